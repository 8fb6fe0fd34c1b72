#!/usr/bin/env bash
# Model files written by one build of the programs load in another and give the same outputs:
# for a refactoring, OLD is a build of the commit before it and NEW the build after.
#   scripts/compare-model-files.sh OLD_BUILD NEW_BUILD [SCRATCH]     (build folders, as build/)
# Trains tiny models with OLD's programs (the tagger with every position scheme and kernelized
# attention, a sentiment ensemble, a translator) on the tests' tiny data, then scores, tags,
# classifies and translates with OLD and with NEW and compares what they print (timings and
# file names aside).  Exit code: the number of outputs that differ.
set -u
[ $# -ge 2 ] || { echo "usage: scripts/compare-model-files.sh OLD_BUILD NEW_BUILD [SCRATCH]" >&2; exit 2; }
old=$(cd "$1" && pwd)/examples new=$(cd "$2" && pwd)/examples
here=$(cd "$(dirname "$0")" && pwd)
scratch=${3:-$(mktemp -d)}
mkdir -p "$scratch" && cd "$scratch" || exit 2
source "$here/../tests/tiny_data.sh"
small="--threads 1 train --epochs 1 --d-model 16 --layers 1 --heads 2 --ff 32 --minutes 0 --plot ''"
differ=0
same() {  # label command...: runs the command with OLD's and NEW's programs, compares the output
  local label=$1; shift
  for b in old new; do
    bin=${!b} eval "$*" 2>&1 | grep -v "sentences/s\|^wrote " > "$b.out"
  done
  if cmp -s old.out new.out; then echo "same: $label"
  else echo "DIFFER: $label"; diff old.out new.out | head -5; differ=$((differ + 1)); fi
}
for pos in none sinusoidal learned mlp fourier relative rope alibi t5 xl cape gaussian; do
  eval "$old/tapegrad-tagger $small --train train.conllu --dev dev.conllu --positions $pos --out t-$pos.npz" > /dev/null
  same "tagger, $pos: eval" '$bin/tapegrad-tagger --threads 1 eval --model t-'$pos'.npz dev.conllu'
  same "tagger, $pos: predict" 'echo "the big dog runs ." | $bin/tapegrad-tagger --threads 1 predict --model t-'$pos'.npz --format json'
done
eval "$old/tapegrad-tagger $small --train train.conllu --dev dev.conllu --attention kernelized --out t-k.npz" > /dev/null
same "tagger, kernelized attention" '$bin/tapegrad-tagger --threads 1 eval --model t-k.npz dev.conllu'
eval "$old/tapegrad-sentiment $small --train train.tsv --dev dev.tsv --ensemble 2 --pooling mean-max --out s.npz" > /dev/null
same "sentiment ensemble" '$bin/tapegrad-sentiment --threads 1 predict --model s.npz --format json "a great film" "an awful film"'
eval "$old/tapegrad-translate $small --train-src tr-train.de --train-tgt tr-train.en --dev-src tr-dev.de --dev-tgt tr-dev.en --min-count 1 --final-beam 0 --out tr.npz" > /dev/null
same "translator: eval" '$bin/tapegrad-translate --threads 1 eval --model tr.npz tr-dev.de tr-dev.en --out hyps.txt && cat hyps.txt'
echo "$differ output(s) differ"
exit "$differ"
