# Runs a libFuzzer binary for SECONDS on a fresh copy of CORPUS (so the
# committed seeds are never modified); crash artifacts land in WORK.
# cmake -DFUZZER=... -DCORPUS=... -DWORK=... -DSECONDS=60 -P run_fuzz.cmake
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/corpus)
file(GLOB seeds ${CORPUS}/*)
file(COPY ${seeds} DESTINATION ${WORK}/corpus)
execute_process(
  COMMAND ${FUZZER} -max_total_time=${SECONDS} -print_final_stats=1
          -artifact_prefix=${WORK}/ ${WORK}/corpus
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (${rc}); artifacts in ${WORK}")
endif()
