#!/usr/bin/env bash
# How good are the example models?  Trains each task program with its defaults on this
# machine, then evaluates the best model on the dev set.  Not a CI test: it takes about 30
# minutes for tagger + sentiment, and an hour more for translation.
#   scripts/bench-models.sh [tagger] [sentiment] [translation]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >/dev/null
tasks=("$@")
[ ${#tasks[@]} -gt 0 ] || tasks=(tagger sentiment translation)
mkdir -p runs
for set in ud-english-ewt sst2 multi30k; do
  [ -d "data/$set" ] && continue
  if [ -d "../shared/data/$set" ]; then scripts/get-data.sh --from ../shared/data "$set"; else scripts/get-data.sh "$set"; fi
done
for task in "${tasks[@]}"; do
  case "$task" in
    tagger)
      start=$(date +%s)
      build/examples/tapegrad-tagger train --data data/ud-english-ewt --out runs/tagger.npz --plot runs/tagger-curve.svg | tr '\r' '\n' | grep -E "^(tagger|epoch [0-9]+:|time limit)"
      echo "tagger: trained in $(( $(date +%s) - start )) s"
      build/examples/tapegrad-tagger eval --model runs/tagger.npz data/ud-english-ewt/en_ewt-ud-dev.conllu ;;
    sentiment)
      start=$(date +%s)
      build/examples/tapegrad-sentiment train --data data/sst2 --out runs/sentiment.npz --plot runs/sentiment-curve.svg | tr '\r' '\n' | grep -E "^(sentiment|epoch [0-9]+:|time limit)"
      echo "sentiment: trained in $(( $(date +%s) - start )) s"
      build/examples/tapegrad-sentiment eval --model runs/sentiment.npz data/sst2/dev.tsv ;;
    translation)
      start=$(date +%s)
      build/examples/tapegrad-translate train --data data/multi30k --out runs/translator.npz --plot runs/translator-curve.svg | tr '\r' '\n' | grep -E "^(translator|epoch [0-9]+:|time limit|runs/)"
      echo "translation: trained in $(( $(date +%s) - start )) s"
      build/examples/tapegrad-translate eval --model runs/translator.npz data/multi30k/val.de data/multi30k/val.en --beam 4 --out runs/val-hyps.txt
      build/examples/tapegrad-translate eval --model runs/translator.npz data/multi30k/val.de data/multi30k/val.en --beam 1 ;;
    *) echo "bench-models: unknown task '$task' (tagger, sentiment, translation)" >&2; exit 2 ;;
  esac
done
