/*
 * Store reads that do not wait for an asynchronous write in flight
 * (pn_store_commit_async). Same contracts as their pn_store_* namesakes in
 * panther/store.h, except that they may answer from before that write.
 * For the engine only: it keeps the in-flight batch's states and
 * idempotency entries in memory and asks the store only for the rest, so
 * its reads overlap the write. Owner thread. Internal to panther_core.
 */
#ifndef PANTHER_STORE_NOWAIT_H
#define PANTHER_STORE_NOWAIT_H

#include "panther/store.h"

PN_MUST_CHECK pn_err_t pn_store__get_snapshot_nowait(
    pn_store_t *store, pn_str_t stream_key, pn_state_t *state,
    pn_snapshot_status_t *status);

PN_MUST_CHECK pn_err_t pn_store__get_dedup_nowait(pn_store_t *store,
                                                  pn_str_t stream_key,
                                                  pn_str_t command_id,
                                                  pn_dedup_entry_t *entry,
                                                  bool *found);

PN_MUST_CHECK pn_err_t pn_store__get_partition_meta_nowait(
    pn_store_t *store, int32_t partition, pn_partition_meta_t *meta,
    bool *found);

PN_MUST_CHECK pn_err_t pn_store__scan_events_nowait(pn_store_t *store,
                                                    pn_str_t stream_key,
                                                    int64_t from_version,
                                                    pn_store_event_fn fn,
                                                    void *opaque);

#endif
