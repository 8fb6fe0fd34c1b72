# tapegrad_add_test(name [source...]): a Boost.Test executable linked with tapegrad and
# registered with CTest.  The sources default to name.cpp; each starts with
#
#   #define BOOST_TEST_MODULE my_layer
#   #include <tapegrad/testing.hpp>        (tapegrad's own tests: "testing.hpp")
#
# and may use testing::randn64, CHECK_GRAD and CHECK_THROWS_WITH.  find_package(tapegrad)
# defines this function; so does tapegrad's own build, for its tests.
function(tapegrad_add_test name)
  find_package(Boost 1.74 REQUIRED COMPONENTS unit_test_framework)
  set(sources ${ARGN})
  if(NOT sources)
    set(sources ${name}.cpp)
  endif()
  add_executable(${name} ${sources})
  target_link_libraries(${name} PRIVATE tapegrad::tapegrad Boost::unit_test_framework)
  target_compile_definitions(${name} PRIVATE BOOST_TEST_DYN_LINK)
  add_test(NAME ${name} COMMAND ${name} --log_level=test_suite WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
endfunction()
