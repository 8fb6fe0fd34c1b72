# cmake -DFOLDER=<path> -P tapegradScratchFolder.cmake: empties FOLDER (making it if needed).
# The setup test that tapegrad_test_folder() gives each test runs this before the test.
if(NOT FOLDER)
  message(FATAL_ERROR "tapegradScratchFolder.cmake: give the folder with -DFOLDER=<path>")
endif()
file(REMOVE_RECURSE ${FOLDER})
file(MAKE_DIRECTORY ${FOLDER})
