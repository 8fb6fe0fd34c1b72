#!/usr/bin/env bash
# Translation beyond teacher forcing, measured on Multi30k (docs/results.md#beyond-teacher-forcing):
#   base     the autoregressive translator of the best recipe found (58 minutes, 2 threads)
#   distill  its beam-4 translations of the training source, for knowledge distillation
#   nat      two non-autoregressive translators side by side, 1 thread each: on the references,
#            and on the distilled translations
#   table    BLEU and sentences/s: beam 4, greedy, sampling, and the NAT models with 1, 4 and 10
#            iterations
#   tune     three continuations of the base side by side, 1 thread each, for the same time:
#            cross-entropy, scheduled sampling, minimum risk training
#   vocab    word against subword (SentencePiece) vocabularies from scratch, side by side
# Not a CI test: about two and a half hours in all.  Each stage reads the one before it.
#   scripts/seq2seq-study.sh [base] [distill] [nat] [table] [tune] [vocab]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >/dev/null
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(base distill nat table tune vocab)
[ -d data/multi30k ] || { if [ -d ../shared/data/multi30k ]; then scripts/get-data.sh --from ../shared/data multi30k; else scripts/get-data.sh multi30k; fi; }
translate=build/examples/tapegrad-translate
d=data/multi30k
out=runs/seq2seq
mkdir -p "$out"
dev=(--dev-src "$d/val.de" --dev-tgt "$d/val.en")
nat_minutes=${NAT_MINUTES:-24} tune_minutes=${TUNE_MINUTES:-12} vocab_minutes=${VOCAB_MINUTES:-18}

# Trains in the background at one thread, its log in $out/NAME.log.
train_1() {
  local name=$1
  shift
  "$translate" --threads 1 train "$@" --out "$out/$name.npz" --plot "$out/$name.svg" --log "$out/$name.jsonl" \
    > "$out/$name.log" 2>&1 &
}
bleu() {  # model, then eval options: one line "BLEU = ... sentences/s"
  "$translate" eval --model "$1" "$d/val.de" "$d/val.en" "${@:2}" | grep -E "^BLEU|sentences/s" | tr '\n' ' '
  echo
}

for stage in "${stages[@]}"; do
  case "$stage" in
    base)
      "$translate" train --data "$d" --dropout 0.3 --epochs 30 --minutes 58 --average 0.999 --out "$out/base.npz" \
        --plot "$out/base.svg" --log "$out/base.jsonl" | tr '\r' '\n' | grep -E "^(translator|epoch [0-9]+:|time limit|runs/)" ;;
    distill)
      "$translate" eval --model "$out/base.npz" "$d/train.de" "$d/train.en" --beam 4 --out "$out/distilled.en" ;;
    nat)
      train_1 nat-ref --train-src "$d/train.de" --train-tgt "$d/train.en" "${dev[@]}" --decoder nat --dropout 0.1 \
        --average 0 --epochs 100 --minutes "$nat_minutes" --final-beam 0
      train_1 nat-kd --train-src "$d/train.de" --train-tgt "$out/distilled.en" "${dev[@]}" --decoder nat --dropout 0.1 \
        --average 0 --epochs 100 --minutes "$nat_minutes" --final-beam 0
      wait ;;
    table)
      echo "autoregressive, beam 4:  $(bleu "$out/base.npz" --beam 4)"
      echo "autoregressive, greedy:  $(bleu "$out/base.npz" --beam 1)"
      for how in "temperature" "temperature --temperature 0.5" "topk --top-k 10" "nucleus --top-p 0.9" "nucleus --top-p 0.5"; do
        echo "autoregressive, one sample, $how:  $(bleu "$out/base.npz" --sample $how --seed 1)"
      done
      for m in nat-ref nat-kd; do
        for k in 1 4 10; do echo "$m, 3 lengths, $k iterations:  $(bleu "$out/$m.npz" --beam 3 --refine "$k")"; done
      done ;;
    tune)
      cont=(--train-src "$d/train.de" --train-tgt "$d/train.en" "${dev[@]}" --init "$out/base.npz" --lr 1e-4 --warmup 0
            --average 0 --epochs 100 --minutes "$tune_minutes" --final-beam 4)
      train_1 tune-ce "${cont[@]}"
      train_1 tune-ss "${cont[@]}" --scheduled-sampling 100
      train_1 tune-mrt "${cont[@]}" --objective mrt --batch-tokens 500
      wait
      for m in tune-ce tune-ss tune-mrt; do echo "$m: $(grep -E "on $d/val.de, beam 4" "$out/$m.log")"; done ;;
    vocab)
      short=(--data "$d" --dropout 0.3 --average 0.999 --epochs 6 --minutes "$vocab_minutes" --final-beam 4)
      train_1 vocab-word "${short[@]}"
      train_1 vocab-spm "${short[@]}" --vocab spm --vocab-size 8000
      wait
      for m in vocab-word vocab-spm; do echo "$m: $(grep -E "on $d/val.de, beam 4" "$out/$m.log")"; done ;;
    *) echo "seq2seq-study: unknown stage '$stage' (base, distill, nat, table, tune, vocab)" >&2; exit 2 ;;
  esac
done
