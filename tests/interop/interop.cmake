# Cross-check of the codec against fastavro (ctest -L interop), included
# from tests/CMakeLists.txt. Skipped (exit 77) unless the Python CMake finds
# has fastavro; to point it at one that does:
#   cmake -S . -B build -DPython3_EXECUTABLE=/path/to/venv/bin/python
find_package(Python3 COMPONENTS Interpreter)
add_executable(codec_interop ${CMAKE_CURRENT_LIST_DIR}/codec_interop.c)
target_link_libraries(codec_interop PRIVATE panther_core)
if(Python3_Interpreter_FOUND)
  add_test(NAME codec_interop_fastavro
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/check_fastavro.py
            $<TARGET_FILE:codec_interop> ${CMAKE_SOURCE_DIR}/schemas
            ${CMAKE_CURRENT_BINARY_DIR}/codec_interop.work)
  set_tests_properties(codec_interop_fastavro PROPERTIES LABELS interop
    SKIP_RETURN_CODE 77 TIMEOUT 300)
endif()
