# tapegrad_add_test(name [source...]): a Boost.Test executable linked with tapegrad and
# registered with CTest.  The sources default to name.cpp; each starts with
#
#   #define BOOST_TEST_MODULE my_layer
#   #include <tapegrad/testing.hpp>        (tapegrad's own tests: "testing.hpp")
#
# and may use testing::randn64, CHECK_GRAD and CHECK_THROWS_WITH.  A test case that checks
# nothing fails (testing.hpp).  The test runs in a folder of its own (tapegrad_test_folder) and
# is compiled with warnings on.  find_package(tapegrad) defines these functions; so does
# tapegrad's own build, for its tests.

# tapegrad_test_folder(name): the CTest test `name` runs in <build>/scratch/<name>, emptied before
# each run by a setup test, name.scratch.  Files a test writes stay out of the source tree, and
# no test reads what an earlier run or another test left behind.
function(tapegrad_test_folder name)
  set(folder ${CMAKE_CURRENT_BINARY_DIR}/scratch/${name})
  add_test(NAME ${name}.scratch COMMAND ${CMAKE_COMMAND} -DFOLDER=${folder}
    -P ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/tapegradScratchFolder.cmake)
  set_tests_properties(${name}.scratch PROPERTIES FIXTURES_SETUP ${name}.scratch)
  set_tests_properties(${name} PROPERTIES WORKING_DIRECTORY ${folder})
  set_property(TEST ${name} APPEND PROPERTY FIXTURES_REQUIRED ${name}.scratch)
endfunction()

function(tapegrad_add_test name)
  find_package(Boost 1.74 REQUIRED COMPONENTS unit_test_framework)
  set(sources ${ARGN})
  if(NOT sources)
    set(sources ${name}.cpp)
  endif()
  add_executable(${name} ${sources})
  target_link_libraries(${name} PRIVATE tapegrad::tapegrad Boost::unit_test_framework)
  target_compile_definitions(${name} PRIVATE BOOST_TEST_DYN_LINK)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    # Options structs are filled with designated initializers that name only what differs from
    # the defaults ({.epochs = 2}); GCC 12 would warn about every member left out.
    target_compile_options(${name} PRIVATE -Wall -Wextra -Wno-missing-field-initializers)
  endif()
  add_test(NAME ${name} COMMAND ${name} --log_level=test_suite)
  tapegrad_test_folder(${name})
endfunction()
