#!/usr/bin/env bash
# End to end, as a user runs them: tapegrad-tagger, tapegrad-sentiment, tapegrad-translate and
# tapegrad-lm train a few steps on tiny data made here, save, evaluate, predict, translate or
# generate, draw their pictures, resume, and refuse bad input.
#   tests/programs_end_to_end.sh BUILD_DIR WORK_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$1
work=$2
rm -rf "$work" && mkdir -p "$work" && cd "$work"
tagger="$build/examples/tapegrad-tagger"
sentiment="$build/examples/tapegrad-sentiment"
translate="$build/examples/tapegrad-translate"
lm="$build/examples/tapegrad-lm"
fail() { echo "FAILED: $*" >&2; exit 1; }
# usage_error LINE COMMAND...: the command stops before any work with exit code 105 (a value
# that fails its check), LINE on stderr and CLI11's usage hint, and nothing else
usage_error() {
  local line=$1 rc=0
  shift
  "$@" > usage.log 2>&1 || rc=$?
  [ "$rc" -eq 105 ] || fail "'$*' exited with $rc, not 105: $(cat usage.log)"
  [ "$(cat usage.log)" = "$line"$'\n'"Run with --help for more information." ] \
    || fail "'$*' said: $(cat usage.log)"$'\n'"expected: $line"
}

json_lines() {  # file: every line is one JSON value
  python3 -c 'import json, sys
for n, line in enumerate(open(sys.argv[1]), 1):
    json.loads(line)' "$1" || fail "$1 holds a line that is not JSON"
}

source "$here/tiny_data.sh"  # train.conllu, train.tsv, tr-train.de, ... in this folder

small="--d-model 16 --layers 1 --heads 2 --ff 32 --minutes 0"

# ---- tagger -------------------------------------------------------------------------------
"$tagger" --threads 1 train --train train.conllu --dev dev.conllu --epochs 2 $small --out tagger.npz --plot curve.svg > train.log
grep -q "epoch 2: train loss" train.log || fail "tagger training did not finish 2 epochs"
[ -s tagger.npz ] && [ -s tagger.npz.ckpt ] || fail "tagger files missing"
# a finished run says where its checkpoint is, and how big
size=$(python3 -c "import os; print(f'{os.path.getsize(\"tagger.npz.ckpt\") / 1e6:.1f}')")
grep -qx "kept the checkpoint tagger.npz.ckpt ($size MB): train again with --resume and more --epochs or --minutes to continue, or delete it" train.log \
  || fail "the checkpoint left by a finished run is not reported: $(tail -1 train.log)"
grep -q "<svg" curve.svg || fail "no training curve"
"$tagger" eval --model tagger.npz dev.conllu | tee eval.log
grep -q "UPOS accuracy" eval.log || fail "tagger eval"
echo "the big dog runs ." | "$tagger" predict --model tagger.npz --attention-svg att.svg | tee predict.log
grep -q "the/" predict.log || fail "tagger predict from stdin"
grep -q "<rect" att.svg || fail "no attention heatmap"
"$tagger" predict --model tagger.npz a small cat sleeps | grep -q "cat/" || fail "tagger predict from arguments"
# --resume continues from the checkpoint to the third epoch
"$tagger" --threads 1 train --train train.conllu --dev dev.conllu --epochs 3 $small --out tagger.npz --plot curve.svg --resume > resume.log
grep -q "resuming from tagger.npz.ckpt: epoch 3" resume.log || fail "resume did not start at epoch 3"
grep -q "epoch 3: train loss" resume.log || fail "resume did not train epoch 3"
# Without subword features: trained, saved, read back
"$tagger" --threads 1 train --train train.conllu --dev dev.conllu --epochs 1 $small --subword-buckets 0 --out nosub.npz --plot '' > /dev/null
"$tagger" eval --model nosub.npz dev.conllu | grep -q "UPOS accuracy" || fail "a tagger without subwords could not be read back"
# bfloat16 products: the program says which kernels run them, trains and saves
"$tagger" --threads 1 --precision bf16 train --train train.conllu --dev dev.conllu --epochs 1 $small --out bf16.npz --plot '' > /dev/null 2> bf16.log
grep -q "^tapegrad-tagger: products in bf16 (" bf16.log || fail "--precision bf16 did not say its kernels: $(cat bf16.log)"
"$tagger" eval --model bf16.npz dev.conllu | grep -q "UPOS accuracy" || fail "a model trained in bf16 could not be read back"
usage_error "--precision: fp8 not in {f32,bf16}" "$tagger" --precision fp8 train --train train.conllu
# Without the convolution before the encoder (the default has one): trained, saved, read back
"$tagger" --threads 1 train --train train.conllu --dev dev.conllu --epochs 1 $small --conv-width 0 --out conv.npz --plot '' > /dev/null
echo "the dog runs" | "$tagger" predict --model conv.npz | grep -q "dog/" || fail "a tagger without a convolution could not be read back"
"$tagger" train --train train.conllu --dev dev.conllu --conv-width -1 > conv.log 2>&1 && fail "accepted --conv-width -1"
# An ensemble of 2 with weight averaging: trained 3 epochs straight, or 2 and then resumed for
# the third, it ends the same (the averages are saved in the checkpoint; small batches and a
# large rate, so that the averaged models' dev accuracy moves from epoch to epoch)
ens="$small --batch-tokens 40 --lr 0.05 --ensemble 2 --average 0.9"
"$tagger" --threads 1 train --train train.conllu --dev dev.conllu --epochs 3 $ens --out ens.npz --plot '' > ens.log
grep -q "parameters in 2 taggers" ens.log || fail "ensemble not announced"
"$tagger" --threads 1 train --train train.conllu --dev dev.conllu --epochs 2 $ens --out ens2.npz --plot '' > /dev/null
"$tagger" --threads 1 train --train train.conllu --dev dev.conllu --epochs 3 $ens --out ens2.npz --plot '' --resume > ens2.log
[ "$(grep '^epoch 3:' ens.log | cut -d'[' -f1)" = "$(grep '^epoch 3:' ens2.log | cut -d'[' -f1 | sed 's/ens2.npz/ens.npz/')" ] \
  || fail "an averaged ensemble resumed differently: $(grep '^epoch 3:' ens.log ens2.log)"
"$tagger" eval --model ens.npz dev.conllu | grep -q "UPOS accuracy" || fail "ensemble eval"
"$tagger" predict --model ens.npz a small cat sleeps | grep -q "cat/" || fail "ensemble predict"
"$tagger" --threads 1 train --train train.conllu --dev dev.conllu --epochs 4 $small --ensemble 2 --out ens2.npz --plot '' --resume > noavg.log 2>&1 \
  && fail "resumed an averaged run without --average"
grep -q "ens2.npz.ckpt: holds weight averages; resume with the same --average" noavg.log || fail "missing averages not explained"
# Ctrl-C (SIGINT) saves a checkpoint and exits cleanly; --resume picks it up
"$tagger" --threads 1 train --train train.conllu --dev dev.conllu --epochs 100000 $small --out long.npz --plot '' > long.log &
pid=$!
for _ in $(seq 1 50); do grep -q "epoch 2:" long.log 2>/dev/null && break; sleep 0.2; done
kill -INT $pid
rc=0; wait $pid || rc=$?
[ "$rc" -eq 130 ] || fail "interrupted training exited with $rc, not 130 (as after Ctrl-C)"
grep -q "interrupted: saved long.npz.ckpt; continue with --resume" long.log || fail "no checkpoint on SIGINT"
"$tagger" --threads 1 train --train train.conllu --dev dev.conllu --epochs 100000 --d-model 16 --layers 1 --heads 2 --ff 32 --minutes 0.02 --out long.npz --plot "" --resume > long2.log
grep -q "resuming from long.npz.ckpt" long2.log || fail "did not resume after SIGINT"
# bad input: a clear message with file and line, and a non-zero exit
printf '1\tdog\tdog\tNOUN\n' > bad.conllu
rc=0; "$tagger" train --train bad.conllu --dev dev.conllu $small > bad.log 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "a malformed file: exit code $rc, not 1"
# (docs/programs.md quotes this line)
[ "$(cat bad.log)" = "tapegrad-tagger: bad.conllu:1: expected 10 tab-separated columns (CoNLL-U), found 4" ] \
  || fail "a malformed file: $(cat bad.log)"
if "$tagger" eval --model train.conllu dev.conllu > bad2.log 2>&1; then fail "accepted a bad model file"; fi
grep -q "train.conllu" bad2.log || fail "the bad model file is not named"
# impossible values and unknown flags: one line naming the option, a usage hint, a non-zero exit
"$tagger" train --train train.conllu --dev dev.conllu --batch-tokens 0 > cli.log 2>&1 && fail "accepted --batch-tokens 0"
grep -q "^--batch-tokens: must be greater than 0, got 0" cli.log && grep -q "Run with --help" cli.log || fail "--batch-tokens 0 message"
"$tagger" train --lr -1 > cli.log 2>&1 && fail "accepted --lr -1"
grep -q "^--lr: must be greater than 0, got -1" cli.log || fail "--lr -1 message"
"$tagger" train --bogus > cli.log 2>&1 && fail "accepted --bogus"
grep -q "The following argument was not expected: --bogus" cli.log || fail "unknown flag message"
"$sentiment" train --bad-lines maybe > cli.log 2>&1 && fail "accepted --bad-lines maybe"
grep -q "bad-lines" cli.log || fail "--bad-lines maybe message"
# --bad-lines skip: the malformed line goes with its sentence, and the program says so
{ cat train.conllu; printf '1\tbroken\tline\n\n'; } > mixed.conllu
"$tagger" --threads 1 train --train mixed.conllu --dev dev.conllu --epochs 1 $small --out skip.npz --plot '' --bad-lines skip > skip.log
grep -q "skipped 1 malformed line with their sentences" skip.log || fail "--bad-lines skip did not report the skipped line"
grep -q "mixed.conllu:$(( $(wc -l < train.conllu) + 1 )): expected 10 tab-separated columns" skip.log || fail "skipped line not named"
# A learning rate that blows the weights up: the NaN stops training, the model saved after
# epoch 1 and its checkpoint survive; --detect-anomaly names the op that made the first inf/NaN.
if "$tagger" --threads 1 train --train train.conllu --dev dev.conllu --epochs 3 $small --lr 1e30 --out nan.npz --plot '' > nan.log 2>&1; then
  fail "a NaN loss did not stop training"
fi
grep -q "the training loss is -\?nan at step 2; stopped without saving over the last good model (rerun with --detect-anomaly" nan.log \
  || fail "no NaN report"
"$tagger" eval --model nan.npz dev.conllu | grep -q "UPOS accuracy" || fail "the model saved before the NaN was lost"
"$tagger" --threads 1 train --train train.conllu --dev dev.conllu --epochs 3 $small --lr 1e30 --out nan.npz --plot '' --resume \
  --detect-anomaly > anomaly.log 2>&1 && fail "anomaly mode did not stop training"
grep -q "resuming from nan.npz.ckpt: epoch 2" anomaly.log || fail "the checkpoint before the NaN was lost"
grep -qE "anomaly: op #[0-9]+ '[a-z_]+' produced (NaN|inf) in its output \([0-9, ]+\) at \[" anomaly.log || fail "anomaly mode named no op"

# ---- sentiment ----------------------------------------------------------------------------
"$sentiment" --threads 1 train --train train.tsv --dev dev.tsv --epochs 2 $small --out sentiment.npz --plot scurve.svg > strain.log
grep -q "epoch 2: train loss" strain.log || fail "sentiment training"
"$sentiment" eval --model sentiment.npz dev.tsv | grep -q "accuracy" || fail "sentiment eval (tsv)"
echo "a great film" | "$sentiment" predict --model sentiment.npz --attention-svg satt.svg | tee spredict.log
grep -qE "^[01]	0\.[0-9]+	a great film" spredict.log || fail "sentiment predict: label, probability, sentence"
# Other choices: no subword features, max or mean-max pooling, an ensemble; each saved and read back
"$sentiment" --threads 1 train --train train.tsv --dev dev.tsv --epochs 1 $small --subword-buckets 0 --pooling max --conv-width 0 --out s3.npz --plot '' > /dev/null
"$sentiment" eval --model s3.npz dev.tsv | grep -q "accuracy" || fail "sentiment without subwords or convolution, max pooling"
"$sentiment" --threads 1 train --train train.tsv --dev dev.tsv --epochs 1 $small --ensemble 3 --pooling mean-max --out s4.npz --plot '' > s4.log
grep -q "parameters in 3 classifiers" s4.log || fail "sentiment ensemble not announced"
"$sentiment" predict --model s4.npz "a great film" | grep -qE "^[01]	0\.[0-9]+	a great film" || fail "sentiment ensemble predict"
"$sentiment" --threads 1 train --train train.tsv --dev dev.tsv --epochs 1 $small --ensemble 2 --bagging 0.5 --out s6.npz --plot '' > /dev/null
"$sentiment" eval --model s6.npz dev.tsv | grep -q "accuracy" || fail "bagged sentiment ensemble"
"$sentiment" train --train train.tsv --dev dev.tsv --ensemble 1 --bagging 0.5 > s7.log 2>&1 && fail "accepted --bagging without an ensemble"
grep -q "bagging is for ensembles (--ensemble 2 or more)" s7.log || fail "--bagging without --ensemble not explained"
"$sentiment" --threads 1 train --train train.tsv --dev dev.tsv --subword-buckets 1 --out s5.npz > s5.log 2>&1 && fail "accepted --subword-buckets 1"
grep -q "must be 0 (off) or at least 2" s5.log || fail "--subword-buckets 1 not explained"
"$sentiment" --threads 1 train --train train.tsv --dev dev.tsv --conv-width 4 --out s8.npz > s8.log 2>&1 && fail "accepted --conv-width 4"
grep -q "conv-width: must be 0 (none) or odd" s8.log || fail "--conv-width 4: no message"
"$sentiment" --threads 1 train --train train.tsv --dev dev.stsa --epochs 1 $small --out s2.npz --plot '' > s2.log 2>&1 \
  && fail "accepted dev labels unseen in training" || grep -q "unknown label '4'" s2.log || fail "unseen label not named"

# ---- translation ----------------------------------------------------------------------------
"$translate" --threads 1 train --train-src tr-train.de --train-tgt tr-train.en --dev-src tr-dev.de --dev-tgt tr-dev.en \
  --epochs 2 $small --min-count 1 --out tr.npz --plot tcurve.svg > ttrain.log
grep -q "epoch 2: train loss .*, dev BLEU" ttrain.log || fail "translator training did not finish 2 epochs"
grep -q "tr.npz on tr-dev.de, beam 4: BLEU = " ttrain.log || fail "no final BLEU after training"
[ -s tr.npz ] && [ -s tr.npz.ckpt ] || fail "translator files missing"
grep -q "<svg" tcurve.svg || fail "no translation training curve"
# activation checkpointing moves no number: the same losses and dev BLEU, epoch by epoch
"$translate" --threads 1 train --train-src tr-train.de --train-tgt tr-train.en --dev-src tr-dev.de --dev-tgt tr-dev.en \
  --epochs 2 $small --min-count 1 --out trck.npz --plot '' --final-beam 0 --checkpoint-blocks > trck.log
[ "$(grep '^epoch [0-9]*:' ttrain.log | cut -d'[' -f1 | sed 's/tr\.npz/OUT/')" = \
  "$(grep '^epoch [0-9]*:' trck.log | cut -d'[' -f1 | sed 's/trck\.npz/OUT/')" ] \
  || fail "--checkpoint-blocks trained differently: $(grep '^epoch [0-9]*:' ttrain.log trck.log)"
"$translate" eval --model tr.npz tr-dev.de tr-dev.en --out hyps.txt | tee teval.log
grep -qE "^BLEU = [0-9.]+ " teval.log || fail "translation eval prints no BLEU"
[ "$(wc -l < hyps.txt)" -eq 12 ] || fail "eval did not write one translation per line"
"$translate" eval --model tr.npz tr-dev.de tr-dev.en --beam 1 --case-sensitive | grep -q "beam 1, cased BLEU" || fail "greedy, cased eval"
echo "Zwei Hund läuft." | "$translate" translate --model tr.npz --attention-svg cross.svg | tee ttranslate.log
[ "$(wc -l < ttranslate.log)" -eq 1 ] || fail "translate: one line per sentence on standard output"
grep -q "<rect" cross.svg && grep -q "cross-attention" cross.svg || fail "no cross-attention heatmap"
"$translate" translate --model tr.npz --beam 2 Eine Katze singt . > /dev/null || fail "translate from arguments"
# scheduled sampling trains (and an impossible k is refused)
"$translate" --threads 1 train --train-src tr-train.de --train-tgt tr-train.en --dev-src tr-dev.de --dev-tgt tr-dev.en \
  --epochs 1 $small --min-count 1 --scheduled-sampling 5 --out trss.npz --plot '' --final-beam 0 > trss.log \
  || fail "scheduled sampling: $(tail -2 trss.log)"
"$translate" --threads 1 train --train-src tr-train.de --train-tgt tr-train.en --dev-src tr-dev.de --dev-tgt tr-dev.en \
  --epochs 1 $small --min-count 1 --scheduled-sampling --out trss3.npz --plot '' --final-beam 0 > trss3.log \
  || fail "--scheduled-sampling without k: $(tail -2 trss3.log)"
"$translate" train --scheduled-sampling 0.5 > trss2.log 2>&1 && fail "accepted --scheduled-sampling 0.5"
grep -q "scheduled-sampling: must be 0 or >= 1, got 0.5" trss2.log || fail "--scheduled-sampling 0.5 message"
# minimum risk training fine-tunes a model file, keeping its vocabularies; without --init it is refused
"$translate" --threads 1 train --train-src tr-train.de --train-tgt tr-train.en --dev-src tr-dev.de --dev-tgt tr-dev.en \
  --epochs 1 --minutes 0 --objective mrt --init tr.npz --mrt-samples 3 --batch-tokens 300 --out trmrt.npz --plot '' \
  --final-beam 0 > trmrt.log || fail "minimum risk training: $(tail -2 trmrt.log)"
grep -q "starting from tr.npz" trmrt.log || fail "mrt did not say where it started"
echo "Zwei Hund läuft." | "$translate" predict --model trmrt.npz > /dev/null || fail "the mrt model does not translate"
"$translate" train --train-src tr-train.de --train-tgt tr-train.en --dev-src tr-dev.de --dev-tgt tr-dev.en \
  --objective mrt > trmrt2.log 2>&1 && fail "accepted --objective mrt without --init"
grep -q "fine-tunes a trained model: name it with --init" trmrt2.log || fail "--objective mrt without --init: message"
# subword vocabularies: a SentencePiece model trained on the training text travels in the model file
"$translate" --threads 1 train --train-src tr-train.de --train-tgt tr-train.en --dev-src tr-dev.de --dev-tgt tr-dev.en \
  --epochs 1 $small --vocab spm --vocab-size 45 --out trspm.npz --plot '' --final-beam 2 > trspm.log \
  || fail "subword vocabulary: $(tail -2 trspm.log)"
grep -q "subword vocabularies" trspm.log || fail "the subword vocabularies were not announced"
grep -q "trspm.npz on tr-dev.de, beam 2: BLEU = " trspm.log || fail "no final BLEU for the subword translator"
echo "Zwei Hunde laufen." | "$translate" predict --model trspm.npz > trspm.out || fail "the subword model does not translate"
grep -q "▁" trspm.out && fail "pieces' word marks left in the output: $(cat trspm.out)"
"$translate" train --train-src tr-train.de --train-tgt tr-train.en --dev-src tr-dev.de --dev-tgt tr-dev.en \
  --vocab spm --vocab-size 100000 > trspm2.log 2>&1 && fail "accepted more pieces than the text has"
grep -q "subword vocabulary of 100000 pieces: SentencePiece: .*Please set it to a value <=" trspm2.log \
  || fail "--vocab-size too large: message"
# the non-autoregressive decoder: trained, evaluated with a length beam and mask-predict iterations
"$translate" --threads 1 train --train-src tr-train.de --train-tgt tr-train.en --dev-src tr-dev.de --dev-tgt tr-dev.en \
  --epochs 1 $small --min-count 1 --decoder nat --out trnat.npz --plot '' --final-beam 2 > trnat.log \
  || fail "non-autoregressive training: $(tail -2 trnat.log)"
grep -q "trnat.npz on tr-dev.de, beam 2: BLEU = " trnat.log || fail "no final BLEU for the non-autoregressive translator"
"$translate" eval --model trnat.npz tr-dev.de tr-dev.en --beam 3 --refine 4 | grep -qE "^BLEU = [0-9.]+ " || fail "nat eval"
echo "Zwei Hund läuft." | "$translate" predict --model trnat.npz --refine 1 --attention-svg natcross.svg > /dev/null \
  || fail "nat predict"
grep -q "<rect" natcross.svg || fail "no cross-attention heatmap for the nat model"
echo "Zwei Hund läuft." | "$translate" predict --model trnat.npz --sample temperature > trnat2.log 2>&1 && fail "sampled from a nat model"
grep -q "a non-autoregressive model decodes with mask_predict" trnat2.log || fail "sampling a nat model: message"
"$translate" train --train-src tr-train.de --train-tgt tr-train.en --dev-src tr-dev.de --dev-tgt tr-dev.en \
  --decoder nat --scheduled-sampling 5 > trnat3.log 2>&1 && fail "accepted scheduled sampling for a nat model"
grep -q "needs an autoregressive model" trnat3.log || fail "scheduled sampling of a nat model: message"
"$translate" train --train-src tr-train.de --train-tgt tr-train.en --dev-src tr-dev.de --dev-tgt tr-dev.en \
  --init trnat.npz --objective mrt > trnat4.log 2>&1 && fail "accepted minimum risk training of a nat model"
grep -q "samples candidates token by token: needs an autoregressive model" trnat4.log || fail "mrt of a nat model: message"
"$translate" train --train-src tr-train.de --train-tgt tr-train.en --dev-src tr-dev.de --dev-tgt tr-dev.en \
  --vocab-size 500 > trspm3.log 2>&1 && fail "accepted --vocab-size without --vocab spm"
grep -q "is for --vocab spm" trspm3.log || fail "--vocab-size without spm: message"
# sampling: several samples a line (tab-separated), reproducible from the seed
printf 'Zwei Hund läuft.\n\nEin Vogel singt.\n' | "$translate" predict --model tr.npz --sample temperature --samples 3 --temperature 1.5 --seed 4 > samp1.out
printf 'Zwei Hund läuft.\n\nEin Vogel singt.\n' | "$translate" predict --model tr.npz --sample temperature --samples 3 --temperature 1.5 --seed 4 > samp2.out
[ "$(wc -l < samp1.out)" -eq 3 ] && [ "$(head -1 samp1.out | awk -F'\t' '{print NF}')" -eq 3 ] || fail "--samples 3: not three samples a line"
cmp -s samp1.out samp2.out || fail "sampling with one seed gave two answers"
"$translate" eval --model tr.npz tr-dev.de tr-dev.en --sample topk --top-k 5 --seed 2 | grep -q "one sample each (topk)" \
  || fail "eval --sample"
"$translate" eval --model tr.npz tr-dev.de tr-dev.en --sample nucleus --top-k 5 > samp3.log 2>&1 && fail "accepted --top-k with nucleus"
grep -q "top-k: is for --sample topk" samp3.log || fail "--top-k with --sample nucleus: message"
echo "Zwei Hund läuft." | "$translate" predict --model tr.npz --sample nucleus --samples 2 --top-p 0.9 --format json | grep -q '"samples":\[' \
  || fail "sampling as JSON"
"$translate" --threads 1 train --train-src tr-train.de --train-tgt tr-train.en --dev-src tr-dev.de --dev-tgt tr-dev.en \
  --epochs 3 $small --min-count 1 --out tr.npz --plot '' --final-beam 0 --resume > tresume.log
grep -q "resuming from tr.npz.ckpt: epoch 3" tresume.log || fail "translation resume"
head -5 tr-train.en > tr-short.en
if "$translate" train --train-src tr-train.de --train-tgt tr-short.en --dev-src tr-dev.de --dev-tgt tr-dev.en $small > tbad.log 2>&1; then
  fail "accepted files of different lengths"
fi
grep -q "tr-short.en:6: the file ends here, but tr-train.de has 120 lines" tbad.log || fail "misaligned files not named"
if "$translate" translate --model tagger.npz hallo > tbad2.log 2>&1; then fail "accepted a tagger model"; fi
grep -q "tagger.npz: a tagger model, not a translator model" tbad2.log || fail "wrong model kind not named"
# ---- language model ----------------------------------------------------------------------------
mkdir -p shakes && cat tr-train.en tr-train.en tr-train.en > shakes/input.txt  # 90% train, 10% valid
"$lm" --threads 1 train --data shakes --recipe nanogpt-cpu --steps 20 --eval-every 10 --context 16 --batch 4 $small --out lm.npz --plot lmcurve.svg > lm.log
grep -q "1 layer of width 16, positions learned," lm.log || fail "lm --recipe nanogpt-cpu: $(head -1 lm.log)"
grep -q "epoch 2: train loss [0-9.]*, dev loss [0-9]\.[0-9]*" lm.log || fail "lm training did not report 2 validation losses: $(tail -2 lm.log)"
[ -s lm.npz ] && [ -s lm.npz.ckpt ] && grep -q "<svg" lmcurve.svg || fail "lm files missing"
"$lm" eval --model lm.npz shakes/input.txt --part valid | tee lmeval.log
grep -qE "^loss [0-9.]+ nats per token, [0-9.]+ bits per character$" lmeval.log || fail "lm eval"
"$lm" eval --model lm.npz shakes/input.txt --part valid --context 12 --stride 4 --json > lmeval.json && json_lines lmeval.json
grep -q '"stride":4' lmeval.json && grep -q '"bits_per_char":' lmeval.json || fail "lm eval --json"
"$lm" generate --model lm.npz --prompt "One d" --tokens 30 --seed 3 > gen1.out 2> gen1.log
"$lm" generate --model lm.npz --prompt "One d" --tokens 30 --seed 3 --no-cache > gen2.out 2> gen2.log
[ "$(head -c 5 gen1.out)" = "One d" ] || fail "lm generate does not start with the prompt"
cmp -s gen1.out gen2.out || fail "lm generate: the cache and no cache wrote different text"
grep -qE "^30 characters in [0-9.]+ s \([0-9]+ a second, with the key/value cache\)$" gen1.log || fail "lm generate: no speed"
"$lm" generate --model lm.npz --tokens 100 --sample nucleus --top-p 0.8 --format json > gen.json && json_lines gen.json
grep -q '"tokens_per_second":' gen.json || fail "lm generate --format json"
"$lm" --threads 1 train --data shakes --recipe nanogpt-cpu --steps 30 --eval-every 10 --context 16 --batch 4 $small --out lm.npz --plot '' --resume > lmresume.log
grep -q "resuming from lm.npz.ckpt: epoch 3" lmresume.log || fail "lm resume did not start at epoch 3"
# subword pieces: the vocabulary's size and the newline, characters counted apart from tokens
"$lm" --threads 1 train --data shakes --vocab spm --vocab-size 26 --steps 10 --eval-every 10 --context 16 --batch 4 $small --out lmspm.npz --plot '' > lmspm.log
grep -qE "^language model: [0-9]+ training and [0-9]+ validation tokens, 27 in the vocabulary" lmspm.log || fail "lm --vocab spm: $(head -1 lmspm.log)"
"$lm" eval --model lmspm.npz shakes/input.txt --part valid > lmspmeval.log
grep -qE "^shakes/input.txt \(its last 10%\): [0-9]+ tokens \([0-9]+ characters\) scored" lmspmeval.log || fail "lm eval of pieces: $(cat lmspmeval.log)"
"$lm" generate --model lmspm.npz --prompt "One d" --tokens 20 --seed 3 > genspm.out 2> genspm.log
[ "$(head -c 5 genspm.out)" = "One d" ] && grep -qE "^20 tokens in " genspm.log || fail "lm generate of pieces: $(cat genspm.log)"
"$lm" --version | grep -qE "^tapegrad-lm \(tapegrad [0-9]+\.[0-9]+\.[0-9]+\)$" || fail "tapegrad-lm --version"
"$lm" train --help > lmhelp.log  # to a file: grep -q would close the pipe early
grep -qE -- "--steps UINT:POSITIVE=5000" lmhelp.log || fail "tapegrad-lm train --help shows no --steps default"
grep -qE -- "--recipe TEXT:\{half-hour,nanogpt-cpu\}=half-hour" lmhelp.log || fail "tapegrad-lm train --help shows no --recipe"
grep -qE -- "--beta2 FLOAT:.*=0\.99$" lmhelp.log || fail "tapegrad-lm's beta2 is not nanoGPT's 0.99"
# bad input: a clear line and exit 1
: > empty.txt
printf 'Gr\xfc\xdfe\n' > latin1.txt
lm_error() {  # message command...: exits 1 with the message
  local message=$1 rc=0
  shift
  "$@" > lmbad.log 2>&1 || rc=$?
  [ "$rc" -eq 1 ] && grep -qF -- "$message" lmbad.log || fail "'$*' exited with $rc: $(cat lmbad.log)"
}
lm_error "tapegrad-lm: empty.txt: the file is empty" "$lm" train --train empty.txt --valid tr-dev.en
lm_error "tapegrad-lm: latin1.txt:1: not UTF-8 text (invalid byte at offset 2)" "$lm" eval --model lm.npz latin1.txt
lm_error "the prompt: the character '~' (U+007E) (character 3) is not in the vocabulary" \
  "$lm" generate --model lm.npz --prompt "One~"
lm_error "evaluate at context 64: positions 'learned' are a table of 16 positions" \
  "$lm" eval --model lm.npz shakes/input.txt --context 64
usage_error "--data: nowhere: cannot open: No such file or directory (expected a folder with input.txt)" \
  "$lm" train --data nowhere
usage_error "--steps: 25 is not a multiple of --eval-every 10" "$lm" train --data shakes --steps 25 --eval-every 10
usage_error "--vocab-size: is for --vocab spm" "$lm" train --data shakes --vocab-size 100

# ---- what every program does the same way ----------------------------------------------------
for p in "$tagger" "$sentiment" "$translate"; do
  name=$(basename "$p")
  # --help shows every default, --version says which tapegrad it is
  "$p" train --help > help.log
  grep -qE -- "--minutes FLOAT:NON-NEGATIVE=[0-9]+" help.log || fail "$name train --help shows no --minutes default"
  grep -qE -- "--d-model UINT:POSITIVE=[0-9]+" help.log || fail "$name train --help shows no --d-model default"
  grep -qE -- "--beta2 FLOAT:.*=0\.999$" help.log || fail "$name train --help: beta2 is not AdamW's usual 0.999"
  "$p" --version | grep -qE "^$name \(tapegrad [0-9]+\.[0-9]+\.[0-9]+\)$" || fail "$name --version"
  # one subcommand vocabulary
  for sub in train eval predict; do "$p" $sub --help > /dev/null || fail "$name has no '$sub'"; done
  # a bad name is refused when the command line is read, before any data is
  "$p" train --positions bogus > pos.log 2>&1 && fail "$name accepted --positions bogus"
  grep -q -- "--positions: bogus not in {none,sinusoidal,learned,mlp,fourier,relative,rope,alibi,t5,xl,cape,gaussian}" pos.log || fail "$name: --positions bogus message"
  grep -q "parameters" pos.log && fail "$name read the data before refusing --positions bogus"
  # a missing file: the same line and exit code whether typed, a default or in --data's folder
  usage_error "--model: nowhere.npz: cannot open: No such file or directory (expected a model file)" \
    "$p" predict --model nowhere.npz hello
  case $name in
    tapegrad-tagger) default=tagger.npz; scored=(../dev.conllu) ;;
    tapegrad-sentiment) default=sentiment.npz; scored=(../dev.tsv) ;;
    tapegrad-translate) default=translator.npz; scored=(../tr-dev.de ../tr-dev.en) ;;
  esac
  mkdir -p empty && cd empty  # no default model here
  usage_error "--model: $default: cannot open: No such file or directory (expected a model file)" "$p" predict hello
  usage_error "--model: $default: cannot open: No such file or directory (expected a model file)" "$p" eval "${scored[@]}"
  cd ..
done
usage_error "--data: nowhere: cannot open: No such file or directory (expected a folder with *train*.conllu and *dev*.conllu)" \
  "$tagger" train --data nowhere
usage_error "--data: empty: expected one *train*.conllu file, found 0 (name the files with --train and --dev)" \
  "$tagger" train --data empty
usage_error "--data: empty/train.tsv: cannot open: No such file or directory (expected the training sentences)" \
  "$sentiment" train --data empty
usage_error "--data: empty/train.de: cannot open: No such file or directory (expected the training source text, a sentence a line)" \
  "$translate" train --data empty
usage_error "file: nowhere.conllu: cannot open: No such file or directory (expected a CoNLL-U file)" \
  "$tagger" eval --model tagger.npz nowhere.conllu
usage_error "reference: nowhere.en: cannot open: No such file or directory (expected a text file, a sentence a line)" \
  "$translate" eval --model tr.npz tr-dev.de nowhere.en
# errors exit 1, usage errors another non-zero code
rc=0; "$tagger" eval --model tr.npz dev.conllu > /dev/null 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "an error exited with $rc, not 1"

# one output line per input line, blank lines included, the same tokeniser everywhere
printf 'the dog runs.\n\na cat sleeps\n' > three.txt
"$tagger" predict --model tagger.npz < three.txt > tp.out
[ "$(wc -l < tp.out)" -eq 3 ] && [ -z "$(sed -n 2p tp.out)" ] || fail "tagger predict: lines do not match the input: $(cat tp.out)"
grep -q "runs/[A-Z]* \./" tp.out || fail "tagger predict did not tokenise 'runs.': $(head -1 tp.out)"
"$sentiment" predict --model sentiment.npz < three.txt > sp.out
[ "$(wc -l < sp.out)" -eq 3 ] && [ -z "$(sed -n 2p sp.out)" ] || fail "sentiment predict: lines do not match the input"
grep -q "	the dog runs \.$" sp.out || fail "sentiment predict did not tokenise 'runs.'"
printf 'Zwei Hund läuft.\n\nEin Vogel singt.\n' | "$translate" predict --model tr.npz > trp.out
[ "$(wc -l < trp.out)" -eq 3 ] && [ -z "$(sed -n 2p trp.out)" ] || fail "translate predict: lines do not match the input"

# JSON lines from predict and eval, and a JSON-lines training log
"$tagger" predict --model tagger.npz --format json < three.txt > tp.json && json_lines tp.json
[ "$(wc -l < tp.json)" -eq 3 ] && grep -q '"tags":\["' tp.json || fail "tagger predict --format json"
"$sentiment" predict --model sentiment.npz --format json < three.txt > sp.json && json_lines sp.json
grep -q '"probabilities":{' sp.json || fail "sentiment predict --format json"
printf 'Zwei Hund läuft.\n' | "$translate" predict --model tr.npz --format json > trp.json && json_lines trp.json
grep -q '"translation":' trp.json || fail "translate predict --format json"
"$tagger" eval --model tagger.npz dev.conllu --json > te.json && json_lines te.json
grep -q '"macro_f1"' te.json && grep -q '"confusion"' te.json || fail "tagger eval --json"
"$sentiment" eval --model sentiment.npz dev.tsv --json > se.json && json_lines se.json
"$translate" eval --model tr.npz tr-dev.de tr-dev.en --json > tre.json && json_lines tre.json
grep -q '"signature":"nrefs:1|case:lc|eff:no|tok:13a|smooth:exp|version:tapegrad-' tre.json || fail "BLEU JSON has no signature"
"$tagger" --threads 1 train --train train.conllu --dev dev.conllu --epochs 2 $small --out logged.npz --plot '' --log train.jsonl > /dev/null
json_lines train.jsonl
[ "$(grep -c '"event":"epoch"' train.jsonl)" -eq 2 ] || fail "the training log does not hold 2 epochs"

# eval: per-class precision, recall and F1, and the confusion matrix as text and SVG
"$tagger" eval --model tagger.npz dev.conllu --confusion-svg confusion.svg > te.log
grep -qE "^NOUN +[0-9.]+% +[0-9.]+% +[0-9.]+% +[0-9]+$" te.log || fail "tagger eval: no per-tag line for NOUN"
grep -q "confusion matrix (rows: gold, columns: predicted)" te.log || fail "tagger eval: no confusion matrix"
grep -q "<rect" confusion.svg || fail "no confusion-matrix SVG"
"$sentiment" eval --model sentiment.npz dev.tsv | grep -q "macro F1" || fail "sentiment eval: no per-class report"
# BLEU with its signature
"$translate" eval --model tr.npz tr-dev.de tr-dev.en | grep -q "^nrefs:1|case:lc|eff:no|tok:13a|smooth:exp|version:tapegrad-" \
  || fail "BLEU printed without a signature"

# CoNLL-U in and out: every line kept, the UPOS column filled in
sed 's/\t\(DET\|NOUN\|VERB\|ADJ\|ADV\|PUNCT\)\t/\t_\t/' dev.conllu > untagged.conllu
"$tagger" predict --model tagger.npz --format conllu < untagged.conllu > tagged.conllu
[ "$(wc -l < tagged.conllu)" -eq "$(wc -l < dev.conllu)" ] || fail "CoNLL-U out has another number of lines than in"
diff <(cut -f1-3,5- dev.conllu) <(cut -f1-3,5- tagged.conllu) > /dev/null || fail "CoNLL-U out changed columns other than UPOS"
[ "$(grep -cP '^\d+\t[^\t]+\t[^\t]+\t(DET|NOUN|VERB|ADJ|ADV|PUNCT)\t' tagged.conllu)" -eq "$(grep -cP '^\d+\t' dev.conllu)" ] \
  || fail "CoNLL-U out: not every word got a tag"
"$tagger" eval --model tagger.npz tagged.conllu | grep -q "UPOS accuracy" || fail "the tagger cannot read its own CoNLL-U"

# model files say what made them: format, kind and the command line
/usr/bin/python3 - tagger.npz <<'PY' || fail "tagger.npz does not record its format and command line"
import sys, numpy
z = numpy.load(sys.argv[1])
text = lambda name: bytes(z[name]).decode()
assert text("format") == "2" and text("kind") == "tagger", (text("format"), text("kind"))
assert "tapegrad-tagger --threads 1 train --train train.conllu" in text("command"), text("command")
PY

# every positional scheme trains, saves and predicts (rope and t5 through the translator's
# decoder cache, in beam search)
for pos in rope alibi t5 xl cape gaussian; do
  "$tagger" --threads 1 train --train train.conllu --dev dev.conllu --epochs 1 $small --ensemble 1 --positions $pos \
    --out pos-$pos.npz --plot '' > pos-$pos.log || fail "tagger with --positions $pos: $(tail -2 pos-$pos.log)"
  echo "the dog runs" | "$tagger" predict --model pos-$pos.npz | grep -q "dog/" || fail "tagger with --positions $pos: predict"
done
for pos in rope t5 xl; do
  "$translate" --threads 1 train --train-src tr-train.de --train-tgt tr-train.en --dev-src tr-dev.de --dev-tgt tr-dev.en \
    --epochs 1 $small --min-count 1 --positions $pos --out trpos-$pos.npz --plot '' --final-beam 0 > trpos-$pos.log \
    || fail "translator with --positions $pos: $(tail -2 trpos-$pos.log)"
  echo "Zwei Hund läuft." | "$translate" predict --model trpos-$pos.npz --beam 2 > /dev/null || fail "translator with --positions $pos: beam search"
done
# kernelized attention (its random features travel in the model file: predict reads them back),
# in the tagger and in the translator's decoder cache; a second scheme inside attention is refused
"$tagger" --threads 1 train --train train.conllu --dev dev.conllu --epochs 1 $small --ensemble 1 --attention kernelized \
  --kernel-features 8 --out kern.npz --plot '' > kern.log || fail "tagger with --attention kernelized: $(tail -2 kern.log)"
echo "the dog runs" | "$tagger" predict --model kern.npz | grep -q "dog/" || fail "tagger with --attention kernelized: predict"
"$translate" --threads 1 train --train-src tr-train.de --train-tgt tr-train.en --dev-src tr-dev.de --dev-tgt tr-dev.en \
  --epochs 1 $small --min-count 1 --attention kernelized --kernel-features 8 --out trkern.npz --plot '' --final-beam 0 \
  > trkern.log || fail "translator with --attention kernelized: $(tail -2 trkern.log)"
echo "Zwei Hund läuft." | "$translate" predict --model trkern.npz --beam 2 > /dev/null || fail "translator with --attention kernelized: beam search"
"$tagger" --threads 1 train --train train.conllu --dev dev.conllu --epochs 1 $small --attention kernelized --positions rope \
  --out kern2.npz > kern2.log 2>&1 && fail "tagger accepted --attention kernelized with --positions rope"
grep -q "kernelized attention has its own relative positions" kern2.log || fail "kernelized with rope: message ($(tail -1 kern2.log))"

# the small examples take --help like the rest
( cd "$work" && "$build/examples/tape_tour" --help > /dev/null ) || fail "tape_tour --help"
[ -e ./--help ] && fail "tape_tour --help wrote a file named --help"
echo "programs end to end: all checks passed"
