# cmake -P script: install the built tapegrad into WORK_DIR/prefix, then, as a user would:
#   - train a tagger with the installed tapegrad-tagger on a tiny CoNLL-U file;
#   - configure, build and run tests/consumer against the installed package (it trains with the
#     library's loop and loads the tagger's model file);
#   - build the README's "Add your own layer" code and test, copied out of the README, with the
#     installed testing helpers and tapegrad_add_test(), and run it through CTest.
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

# The README's layer and its test, word for word.
file(READ ${SOURCE_DIR}/README.md readme)
string(FIND "${readme}" "class GatedLinear" class_begin)
string(FIND "${readme}" "BOOST_AUTO_TEST_CASE(gated_linear" test_begin)
if(class_begin LESS 0 OR test_begin LESS 0)
  message(FATAL_ERROR "README.md no longer shows the GatedLinear layer and its test")
endif()
string(SUBSTRING "${readme}" ${class_begin} -1 rest)
string(FIND "${rest}" "```" end)
string(SUBSTRING "${rest}" 0 ${end} layer_code)
string(SUBSTRING "${readme}" ${test_begin} -1 rest)
string(FIND "${rest}" "```" end)
string(SUBSTRING "${rest}" 0 ${end} test_code)
file(WRITE ${WORK_DIR}/readme_layer.cpp
  "#define BOOST_TEST_MODULE readme_layer\n#include <tapegrad/testing.hpp>\n\n${layer_code}\n${test_code}")

run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer -B ${WORK_DIR}/build
    -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release
    -DREADME_LAYER_TEST=${WORK_DIR}/readme_layer.cpp)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build -j2)
run(${WORK_DIR}/build/consumer ${WORK_DIR}/program-tagger.npz)
# The test through CTest, as tapegrad_add_test() registers it: in its own scratch folder, with
# the installed tapegradScratchFolder.cmake.
run(${CTEST_COMMAND} --test-dir ${WORK_DIR}/build --output-on-failure)
