#!/usr/bin/env bash
# Fuzzes tapegrad's data readers and checkpoint loader with libFuzzer (clang from Debian, with
# AddressSanitizer and UndefinedBehaviorSanitizer), then keeps the new inputs that reach new code
# in tests/fuzz/corpus/<target>/: CTest replays every kept input with the normal build
# (fuzz_corpus_* tests), so what fuzzing found stays tested.  Crashing inputs are left in
# build-fuzz/crash-<target>-* and the script fails.
#   scripts/fuzz.sh [seconds per target, default 60] [conllu labeled parallel checkpoint]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh clang libclang-rt-14-dev
seconds=${1:-60}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(conllu labeled parallel checkpoint)

cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DTAPEGRAD_FUZZ=ON -DTAPEGRAD_BUILD_EXAMPLES=OFF -DTAPEGRAD_BUILD_BENCH=OFF > /dev/null
make -C build-fuzz -j2 fuzz_replay_checkpoint "${targets[@]/#/fuzz_}" > build-fuzz/make.log
seed=tests/fuzz/seeds/checkpoint/adamw.npz
[ -s "$seed" ] || build-fuzz/tests/fuzz_replay_checkpoint --make-checkpoint-seed "$seed"

status=0
for t in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus-$t" "tests/fuzz/corpus/$t"
  echo "fuzzing $t for $seconds s"
  if ! build-fuzz/tests/fuzz_$t -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=2048 -timeout=10 \
      -print_final_stats=1 -artifact_prefix="build-fuzz/crash-$t-" \
      "build-fuzz/corpus-$t" "tests/fuzz/seeds/$t" "tests/fuzz/corpus/$t" 2> "build-fuzz/fuzz-$t.log"; then
    echo "FOUND A CRASH in $t: see build-fuzz/fuzz-$t.log and build-fuzz/crash-$t-*" >&2
    status=1
  fi
  grep -E "stat::number_of_executed_units|stat::new_units_added" "build-fuzz/fuzz-$t.log" | sed "s/^/  $t: /"
  # Keep only the inputs that add coverage over what is kept already.
  build-fuzz/tests/fuzz_$t -merge=1 "tests/fuzz/corpus/$t" "build-fuzz/corpus-$t" 2> "build-fuzz/merge-$t.log"
  echo "  $t: $(ls "tests/fuzz/corpus/$t" | wc -l) inputs kept in tests/fuzz/corpus/$t"
done
exit $status
