# libFuzzer targets, included from tests/CMakeLists.txt when PANTHER_FUZZ is
# ON. The whole project is then built with clang:
#   CC=clang cmake -S . -B build-fuzz -DPANTHER_FUZZ=ON
#   cmake --build build-fuzz --target fuzz_command_decoder
#   ./build-fuzz/tests/fuzz_command_decoder -max_total_time=60 tests/fuzz/corpus
# ctest -L fuzz runs the same for 60 s on a copy of the corpus.
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "PANTHER_FUZZ=ON needs clang: configure with CC=clang")
endif()

set(PN_FUZZ_SANITIZERS -fsanitize=address,undefined
    -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
# Coverage and sanitizers in the library the fuzzer drives; whatever links
# panther_core (tests, the CLI) then needs the sanitizer runtimes too.
target_compile_options(panther_core PRIVATE -fsanitize=fuzzer-no-link
                       ${PN_FUZZ_SANITIZERS})
target_link_options(panther_core INTERFACE -fsanitize=address,undefined)

add_executable(fuzz_command_decoder
  ${CMAKE_CURRENT_LIST_DIR}/fuzz_command_decoder.c)
target_compile_options(fuzz_command_decoder PRIVATE -fsanitize=fuzzer
                       ${PN_FUZZ_SANITIZERS})
target_link_options(fuzz_command_decoder PRIVATE -fsanitize=fuzzer)
target_link_libraries(fuzz_command_decoder PRIVATE panther_core)
target_include_directories(fuzz_command_decoder PRIVATE ${CMAKE_SOURCE_DIR}/src
                           ${CMAKE_CURRENT_SOURCE_DIR})

# Writes the seed corpus (committed in tests/fuzz/corpus).
add_executable(fuzz_gen_corpus ${CMAKE_CURRENT_LIST_DIR}/gen_corpus.c)
target_link_libraries(fuzz_gen_corpus PRIVATE panther_core)

add_test(NAME fuzz_command_decoder
  COMMAND ${CMAKE_COMMAND} -DFUZZER=$<TARGET_FILE:fuzz_command_decoder>
          -DCORPUS=${CMAKE_CURRENT_LIST_DIR}/corpus
          -DWORK=${CMAKE_CURRENT_BINARY_DIR}/fuzz_command_decoder.work
          -DSECONDS=60
          -P ${CMAKE_CURRENT_LIST_DIR}/run_fuzz.cmake)
set_tests_properties(fuzz_command_decoder PROPERTIES LABELS fuzz TIMEOUT 300)
