#!/usr/bin/env python3
"""Cross-checks the C codec against fastavro, an independent Avro
implementation, in both directions:

  fastavro encodes random records (every command type in plain and
  single-object framing, every event type, outcomes, snapshots) -> the C
  codec decodes them and must report the same fields -> the C codec
  re-encodes them -> fastavro must read back the original record.

Usage: check_fastavro.py CODEC_INTEROP SCHEMA_DIR WORK_DIR
Exits 77 (skipped) when fastavro is not installed (pip install fastavro).
"""
import io
import json
import os
import random
import subprocess
import sys

try:
    import fastavro
    from fastavro.schema import fingerprint, to_parsing_canonical_form
except ImportError:
    print("fastavro not installed: skipped")
    sys.exit(77)

NAMES = ["Command", "InventoryEvent", "CommandOutcome", "InventorySnapshot"]
COMMANDS = ["UpdateInventory", "ReserveInventory", "CancelReservation", "ShipOrder"]
EVENTS = ["InventoryUpdated", "InventoryReserved", "ReservationCancelled", "LineItemShipped"]
TYPES = ["UPDATE", "RESERVE", "CANCEL", "SHIP"]
REASONS = ["INSUFFICIENT_INVENTORY", "NO_RESERVATION", "EXCEEDS_RESERVATION",
           "INVALID_QUANTITY", "INVALID_COMMAND"]
NS = "panther.inventory."


def strip_logical(o):
    """Keeps timestamps as plain longs (fastavro cannot make datetimes of
    every long)."""
    if isinstance(o, dict):
        return {k: strip_logical(v) for k, v in o.items() if k != "logicalType"}
    if isinstance(o, list):
        return [strip_logical(v) for v in o]
    return o


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def s(self, nul=True):
        chars = "abcXYZ019-_|é€😀 \n\"" + ("\x00" if nul else "")
        return "".join(self.r.choice(chars) for _ in range(self.r.randint(0, 40)))

    def i(self):
        return self.r.choice([0, 1, -1, 2**31 - 1, -2**31, self.r.randint(-2**31, 2**31 - 1)])

    def l(self):
        return self.r.choice([0, 1, -1, 2**63 - 1, -2**63, self.r.randint(-2**63, 2**63 - 1)])


def command(g, single_object_header):
    t = g.r.randrange(4)
    q = g.i() if t < 2 or g.r.random() < 0.5 else None
    rec = {"id": g.s() or "x", "skuId": g.s(), "fulfillmentNodeId": g.s(),
           "quantity": q, "by": g.s(), "at": g.l()}
    if t:
        rec["orderId"] = g.s()
    expect = {"type": t, "id": rec["id"], "orderId": rec.get("orderId"),
              "skuId": rec["skuId"], "node": rec["fulfillmentNodeId"],
              "by": rec["by"], "quantity": q, "at": rec["at"], "err": "OK"}
    header = single_object_header if g.r.random() < 0.5 else b""
    return "c", (NS + COMMANDS[t], rec), header, expect


def event(g):
    t = g.r.randrange(4)
    pay = ({"quantity": g.i(), "previousQuantity": g.l()} if t == 0
           else {"orderId": g.s(), "quantity": g.i()})
    rec = {"skuId": g.s(), "fulfillmentNodeId": g.s(), "version": g.l(),
           "commandId": g.s(), "by": g.s(), "at": g.l(),
           "event": (NS + EVENTS[t], pay)}
    expect = {"type": t, "skuId": rec["skuId"], "node": rec["fulfillmentNodeId"],
              "commandId": rec["commandId"], "by": rec["by"],
              "orderId": pay.get("orderId"), "version": rec["version"],
              "at": rec["at"], "quantity": pay["quantity"],
              "prev": pay.get("previousQuantity", 0), "err": "OK"}
    return "e", rec, b"", expect


def outcome(g):
    ct, reason = g.r.randrange(4), g.r.choice([None, 0, 1, 2, 3, 4])
    rec = {"commandId": g.s(), "commandType": TYPES[ct],
           "orderId": g.r.choice([None, g.s()]), "skuId": g.s(),
           "fulfillmentNodeId": g.s(),
           "status": "ACCEPTED" if reason is None else "REJECTED",
           "reason": None if reason is None else REASONS[reason],
           "duplicate": g.r.random() < 0.5, "version": g.l(), "onHand": g.l(),
           "reserved": g.l(), "available": g.l(), "at": g.l()}
    expect = {"commandId": rec["commandId"], "orderId": rec["orderId"],
              "skuId": rec["skuId"], "node": rec["fulfillmentNodeId"], "ct": ct,
              "st": 0 if reason is None else 1,
              "reason": -1 if reason is None else reason,
              "dup": int(rec["duplicate"]), "v": rec["version"],
              "oh": rec["onHand"], "res": rec["reserved"],
              "av": rec["available"], "at": rec["at"], "err": "OK"}
    return "o", rec, b"", expect


def snapshot(g):
    # The decoder hands sku/node back as C strings: no NUL in them here.
    orders = sorted({g.s() for _ in range(g.r.randint(0, 30))}, key=str.encode)
    res = [{"orderId": o, "quantity": g.r.randint(1, 10**9)} for o in orders]
    on_hand, reserved = g.r.randint(0, 10**12), sum(r["quantity"] for r in res)
    rec = {"skuId": g.s(False), "fulfillmentNodeId": g.s(False),
           "version": g.r.randint(0, 10**9), "onHand": on_hand,
           "reserved": reserved, "available": on_hand - reserved,
           "reservations": res, "updatedAt": g.l()}
    expect = {"skuId": rec["skuId"], "node": rec["fulfillmentNodeId"],
              "v": rec["version"], "oh": on_hand, "res": reserved,
              "at": rec["updatedAt"], "err": "OK",
              "r": [{"o": r["orderId"], "q": r["quantity"]} for r in res]}
    return "s", rec, b"", expect


def from_c(v):
    """The helper prints each byte as \\u00XX: back to the UTF-8 text."""
    if isinstance(v, str):
        return v.encode("latin-1").decode("utf-8")
    if isinstance(v, dict):
        return {k: from_c(x) for k, x in v.items()}
    if isinstance(v, list):
        return [from_c(x) for x in v]
    return v


def main():
    tool, schema_dir, work = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)
    raw = {n: json.load(open(os.path.join(schema_dir, n + ".avsc"))) for n in NAMES}
    schemas = {n: fastavro.parse_schema(strip_logical(v)) for n, v in raw.items()}
    fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(raw["Command"]), "CRC-64-AVRO"))
    kinds = {"c": "Command", "e": "InventoryEvent", "o": "CommandOutcome",
             "s": "InventorySnapshot"}
    g = Gen(20240531)
    cases = ([command(g, b"\xc3\x01" + fp) for _ in range(300)] +
             [event(g) for _ in range(200)] + [outcome(g) for _ in range(200)] +
             [snapshot(g) for _ in range(100)])
    args = []
    for n, (kind, rec, header, _) in enumerate(cases):
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, schemas[kinds[kind]], rec)
        path = os.path.join(work, "py%d" % n)
        with open(path, "wb") as f:
            f.write(header + buf.getvalue())
        args += [kind, path, path + ".c"]
    out = subprocess.run([tool] + args, capture_output=True, text=True)
    if out.returncode:
        print(out.stdout[-2000:], out.stderr[-2000:])
        return 1
    bad = 0
    for (kind, rec, _, expect), line, n in zip(cases, out.stdout.splitlines(), range(len(cases))):
        got = from_c(json.loads(line))
        with open(os.path.join(work, "py%d.c" % n), "rb") as f:
            back = fastavro.schemaless_reader(io.BytesIO(f.read()), schemas[kinds[kind]],
                                              return_record_name=True)
        want = rec
        if got != expect or back != want:
            bad += 1
            if bad <= 3:
                print("MISMATCH", kind, "\n expected", expect, "\n C decoded", got,
                      "\n written", want, "\n C wrote", back)
    print("%d records, %d mismatches" % (len(cases), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
