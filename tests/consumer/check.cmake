# cmake -P script: install the built tapegrad into WORK_DIR/prefix, then, as a user would:
#   - train a tagger with the installed tapegrad-tagger on a tiny CoNLL-U file;
#   - configure, build and run tests/consumer against the installed package (it trains with the
#     library's loop and loads the tagger's model file; consumer_measures links tapegrad::linalg);
#   - build the README's own project, copied out of the README: its CMakeLists.txt ("Where
#     things live") as it stands, the tour's first example as the program (its tape listing
#     must be the one the README shows, and it must write the DOT graph), and the "Add your own
#     layer" code and test as the test; then run its test with ctest, which must find it.
# Any failing step fails the test.
# Emptied, not removed: WORK_DIR is this process's working directory under CTest.
file(GLOB old_files ${WORK_DIR}/*)
if(old_files)
  file(REMOVE_RECURSE ${old_files})
endif()
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc WORKING_DIRECTORY ${WORK_DIR})
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()
file(MAKE_DIRECTORY ${WORK_DIR})
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix)

# Only public headers are installed.
foreach(internal autograd/runtime/gemm.hpp autograd/runtime/fast_math.hpp)
  if(EXISTS ${WORK_DIR}/prefix/include/tapegrad/${internal})
    message(FATAL_ERROR "an internal header was installed: ${internal}")
  endif()
endforeach()

# A tiny tagged corpus: six words, three tags.
set(words the a dog cat runs sleeps big .)
set(tags DET DET NOUN NOUN VERB VERB ADJ PUNCT)
set(conllu "")
foreach(s RANGE 1 30)
  set(conllu "${conllu}# sent_id = ${s}\n")
  foreach(j RANGE 0 4)
    math(EXPR k "(${s} * 7 + ${j} * 3) % 8")
    math(EXPR id "${j} + 1")
    list(GET words ${k} w)
    list(GET tags ${k} t)
    set(conllu "${conllu}${id}\t${w}\t${w}\t${t}\t_\t_\t0\tdep\t_\t_\n")
  endforeach()
  set(conllu "${conllu}\n")
endforeach()
file(WRITE ${WORK_DIR}/tiny.conllu "${conllu}")
run(${WORK_DIR}/prefix/bin/tapegrad-tagger --threads 1 train --train tiny.conllu --dev tiny.conllu --epochs 1
    --d-model 16 --layers 1 --heads 2 --ff 32 --minutes 0 --ensemble 1 --out program-tagger.npz --plot tiny-curve.svg)

# The text of README.md from the first `begin` after `after` up to the next ``` (fails naming
# `what` when either is missing).
file(READ ${SOURCE_DIR}/README.md readme)
function(readme_block out what after begin)
  string(FIND "${readme}" "${after}" at)
  if(at LESS 0)
    message(FATAL_ERROR "README.md no longer shows ${what} (looked for: ${after})")
  endif()
  string(SUBSTRING "${readme}" ${at} -1 rest)
  string(FIND "${rest}" "${begin}" at)
  if(at LESS 0)
    message(FATAL_ERROR "README.md no longer shows ${what} (looked for: ${begin} after ${after})")
  endif()
  string(SUBSTRING "${rest}" ${at} -1 rest)
  if(begin MATCHES "^```")  # an opening fence: the block is what follows it
    string(LENGTH "${begin}" fence)
    string(SUBSTRING "${rest}" ${fence} -1 rest)
  endif()
  string(FIND "${rest}" "```" end)
  string(SUBSTRING "${rest}" 0 ${end} block)
  set(${out} "${block}" PARENT_SCOPE)
endfunction()

readme_block(cmake_lists "the CMakeLists.txt of another project" "## Where things live" "```cmake\n")
readme_block(tour "the tour's first example" "### A tensor, an op, backward, and the tape" "```cpp\n")
readme_block(listing "the tour's tape listing" "prints (this is" "```\n")
readme_block(layer_code "the GatedLinear layer" "## Add your own layer" "class GatedLinear")
readme_block(test_code "the GatedLinear test" "## Add your own layer" "BOOST_AUTO_TEST_CASE(gated_linear")

# The project's files are the names its CMakeLists.txt gives.
if(NOT cmake_lists MATCHES "add_executable\\(([A-Za-z0-9_-]+) ([A-Za-z0-9_.-]+)\\)")
  message(FATAL_ERROR "README.md's CMakeLists.txt builds no program:\n${cmake_lists}")
endif()
set(app ${CMAKE_MATCH_1})
set(app_source ${CMAKE_MATCH_2})
if(NOT cmake_lists MATCHES "tapegrad_add_test\\(([A-Za-z0-9_-]+)\\)")
  message(FATAL_ERROR "README.md's CMakeLists.txt adds no test with tapegrad_add_test:\n${cmake_lists}")
endif()
set(test ${CMAKE_MATCH_1})
set(project ${WORK_DIR}/readme-project)
file(WRITE ${project}/CMakeLists.txt "${cmake_lists}")
file(WRITE ${project}/${app_source}
  "#include <tapegrad/tapegrad.hpp>\n\n#include <fstream>\n#include <iostream>\n\nint main() {\n${tour}  return 0;\n}\n")
file(WRITE ${project}/${test}.cpp
  "#define BOOST_TEST_MODULE my_layer\n#include <tapegrad/testing.hpp>\n\n${layer_code}\n${test_code}")

run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer -B ${WORK_DIR}/build
    -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build -j2)
run(${WORK_DIR}/build/consumer ${WORK_DIR}/program-tagger.npz)
run(${WORK_DIR}/build/consumer_measures)

# The README's project, with the commands the README gives.
run(${CMAKE_COMMAND} -S ${project} -B ${project}/build -DCMAKE_BUILD_TYPE=Release
    -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
run(${CMAKE_COMMAND} --build ${project}/build)
run(${CMAKE_CTEST_COMMAND} --test-dir ${project}/build --output-on-failure --no-tests=error)

execute_process(COMMAND ${project}/build/${app} WORKING_DIRECTORY ${project}/build
                RESULT_VARIABLE rc OUTPUT_VARIABLE printed)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the README's tour example failed (${rc})")
endif()
if(NOT printed STREQUAL listing)
  message(FATAL_ERROR "the README's tour example printed\n${printed}\nbut the README shows\n${listing}")
endif()
set(dot "")
if(EXISTS ${project}/build/tape.dot)
  file(READ ${project}/build/tape.dot dot LIMIT 20)
endif()
if(NOT dot MATCHES "^digraph tape {")
  message(FATAL_ERROR "the README's tour example wrote no DOT graph to tape.dot: '${dot}'")
endif()
