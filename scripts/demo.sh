#!/usr/bin/env bash
# The main job: installs what is missing, builds the tagger program (only it: the tests are
# scripts/test.sh's), fetches UD English EWT, trains the part-of-speech tagger for a few
# minutes, prints its dev accuracy and tags a sentence.
#   scripts/demo.sh [minutes]        (default 4)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-4}
scripts/build.sh tapegrad-tagger
if [ ! -f data/ud-english-ewt/en_ewt-ud-train.conllu ]; then
  if [ -d ../shared/data/ud-english-ewt ]; then scripts/get-data.sh --from ../shared/data ud-english-ewt
  else scripts/get-data.sh ud-english-ewt; fi
fi
mkdir -p runs
# One tagger instead of the default ensemble of three: a few minutes are enough for it.
# The full recipe's time is docs/results.md's last measurement of it (2026-12-01, 2 cores).
echo "== training a tagger for at most $minutes minutes (the full recipe, an ensemble of 3 for 12 epochs,"
echo "   took 11 min 6 s on 2 cores when last measured, docs/results.md:"
echo "   build/examples/tapegrad-tagger train --data data/ud-english-ewt)"
build/examples/tapegrad-tagger train --data data/ud-english-ewt --ensemble 1 --epochs 12 --minutes "$minutes" \
  --out runs/demo-tagger.npz --plot runs/demo-tagger-curve.svg
echo
echo "== dev accuracy of the best model"
build/examples/tapegrad-tagger eval --model runs/demo-tagger.npz data/ud-english-ewt/en_ewt-ud-dev.conllu
echo
echo "== tagging a sentence (and drawing its self-attention to runs/demo-attention.svg)"
build/examples/tapegrad-tagger predict --model runs/demo-tagger.npz --attention-svg runs/demo-attention.svg \
  "The old man the boat , said the sailors who had seen everything ."
echo
echo "training curve: runs/demo-tagger-curve.svg (open it in a browser)"
