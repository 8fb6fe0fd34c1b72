#!/usr/bin/env bash
# The four programs trained across ranks with mpirun, on tiny data made here: the same flags as
# one process, rank 0 alone prints and writes, --resume with another rank count continues the
# same training, Ctrl-C and a killed rank stop every rank and leave a readable checkpoint.
#   tests/programs_mpi.sh BUILD_DIR WORK_DIR MPIRUN
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$1
work=$2
mpirun=("$3" --allow-run-as-root --oversubscribe)
rm -rf "$work" && mkdir -p "$work" && cd "$work"
tagger="$build/examples/tapegrad-tagger"
sentiment="$build/examples/tapegrad-sentiment"
translate="$build/examples/tapegrad-translate"
lm="$build/examples/tapegrad-lm"
fail() { echo "FAILED: $*" >&2; exit 1; }
pid=
trap '[ -n "$pid" ] && kill -KILL $pid 2>/dev/null; true' EXIT  # no training left behind by a failed check
wait_for() {  # file pattern: until the pattern shows in the file (a minute at most)
  for _ in $(seq 1 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.2; done
  fail "waited a minute for '$2' in $1: $(tail -3 "$1")"
}
ranks_of() {  # out-file: the pids of the ranks training into it
  pgrep -f -- "--out $1" | while read -r p; do
    tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -q "^OMPI_COMM_WORLD_RANK=" && echo "$p"
  done
}
source "$here/tiny_data.sh"

model="--d-model 16 --layers 1 --heads 2 --ff 32"
small="$model --minutes 0"

# ---- each program, as 2 ranks, with the flags it takes alone ------------------------------
"${mpirun[@]}" -np 2 "$tagger" --threads 1 train --train train.conllu --dev dev.conllu --epochs 2 $small --out tagger.npz > tagger.log
grep -q "data-parallel: 2 ranks, each with 1 thread(s)" tagger.log || fail "the tagger did not say it ran on 2 ranks"
[ "$(grep -c '^epoch 2: train loss' tagger.log)" -eq 1 ] || fail "epoch 2 reported $(grep -c '^epoch 2:' tagger.log) times, not once (by rank 0)"
"$tagger" eval --model tagger.npz dev.conllu | grep -q "UPOS accuracy" || fail "the tagger trained on 2 ranks cannot be read"

"${mpirun[@]}" -np 2 "$sentiment" --threads 1 train --train train.tsv --dev dev.tsv --epochs 2 $small --ensemble 2 --out s.npz > s.log
[ "$(grep -c '^epoch 2: train loss' s.log)" -eq 1 ] || fail "sentiment: epoch 2 not reported once"
"$sentiment" eval --model s.npz dev.tsv | grep -q "accuracy" || fail "the sentiment ensemble trained on 2 ranks cannot be read"

"${mpirun[@]}" -np 2 "$translate" --threads 1 train --train-src tr-train.de --train-tgt tr-train.en --dev-src tr-dev.de \
  --dev-tgt tr-dev.en --epochs 2 $small --overlap --out tr.npz > tr.log
[ "$(grep -c '^epoch 2: train loss' tr.log)" -eq 1 ] || fail "translate: epoch 2 not reported once"
[ "$(grep -c 'tr.npz on tr-dev.de, beam 4: BLEU' tr.log)" -eq 1 ] || fail "translate: the final BLEU not reported once"

mkdir -p text && cat tr-train.en tr-train.en > text/input.txt
lmopts="--data text --steps 20 --eval-every 10 --context 16 --batch 6 $small"
"${mpirun[@]}" -np 2 "$lm" --threads 1 train $lmopts --plot '' --out lm2.npz --log lm2.jsonl > lm2.log
[ "$(grep -c '^epoch 2: train loss' lm2.log)" -eq 1 ] || fail "lm: epoch 2 not reported once"
"$lm" eval --model lm2.npz text/input.txt --part valid | grep -q "bits per character" || fail "the lm trained on 2 ranks cannot be read"
# a batch of 6 windows split 3 and 3: the same steps as one process, up to float32 rounding
"$lm" --threads 1 train $lmopts --plot '' --out lm1.npz --log lm1.jsonl > lm1.log
python3 - lm1.jsonl lm2.jsonl <<'EOF' || fail "lm: 2 ranks trained otherwise than 1 process"
import json, sys
def losses(path):
    return [r["train_loss"] for r in map(json.loads, open(path)) if r["event"] == "epoch"]
one, two = losses(sys.argv[1]), losses(sys.argv[2])
print("epoch losses, 1 process:", one, "\n2 ranks:", two)
assert len(one) == len(two) == 2 and all(abs(a - b) <= 1e-5 * abs(a) for a, b in zip(one, two)), (one, two)
EOF

# ---- resume with another rank count: the same training as one process all along ------------
# No random draws (dropout off), so 1 process and any mix of rank counts take the same steps
# up to float32 rounding; the JSON logs' epoch losses are compared.
same="--train train.conllu --dev dev.conllu $small --batch-tokens 60 --dropout 0 --word-dropout 0 --rare-word-dropout 0 --ensemble 1"
"$tagger" --threads 1 train $same --epochs 3 --out one.npz --log one.jsonl > one.log
"${mpirun[@]}" -np 2 "$tagger" --threads 1 train $same --epochs 1 --out mix.npz --log mix.jsonl > mix1.log
"$tagger" --threads 1 train $same --epochs 2 --out mix.npz --log mix.jsonl --resume > mix2.log
grep -q "resuming from mix.npz.ckpt: epoch 2" mix2.log || fail "1 rank did not resume what 2 ranks saved"
"${mpirun[@]}" -np 3 "$tagger" --threads 1 train $same --epochs 3 --out mix.npz --log mix.jsonl --resume > mix3.log
grep -q "resuming from mix.npz.ckpt: epoch 3" mix3.log || fail "3 ranks did not resume what 1 rank saved"
python3 - one.jsonl mix.jsonl <<'EOF' || fail "resumed across rank counts, the training differs"
import json, sys
def losses(path):
    return [r["train_loss"] for r in map(json.loads, open(path)) if r["event"] == "epoch"]
one, mix = losses(sys.argv[1]), losses(sys.argv[2])
print("epoch losses, 1 process:", one, "\n2, then 1, then 3 ranks:", mix)
assert len(one) == len(mix) == 3, (one, mix)
assert all(abs(a - b) <= 1e-5 * abs(a) for a, b in zip(one, mix))
EOF

# ---- Ctrl-C or SIGUSR1: every rank stops, rank 0 saves the checkpoint, --resume continues ---
# Trains 2 ranks into NAME.npz, sends SIGNAL to mpirun after epoch 2, and checks that rank 0
# saved the checkpoint and that no rank is left; mpirun's exit code is left in $rc.
stop_with() {  # signal name [mpirun options]
  local signal=$1 name=$2
  shift 2
  "${mpirun[@]}" "$@" -np 2 "$tagger" --threads 1 train --train train.conllu --dev dev.conllu $small --epochs 100000 \
    --out "$name.npz" > "$name.log" 2>&1 &
  pid=$!
  wait_for "$name.log" "^epoch 2:"
  kill -"$signal" $pid
  rc=0; wait $pid || rc=$?
  pid=
  grep -q "interrupted: saved $name.npz.ckpt; continue with --resume" "$name.log" \
    || fail "no checkpoint on SIG$signal: $(tail -5 "$name.log")"
  [ -z "$(ranks_of "$name.npz")" ] || fail "a rank outlived SIG$signal"
}
# mpirun answers Ctrl-C with SIGTERM to every rank and SIGKILL a while later; the while
# (odls_base_sigkill_timeout, 1 s by default) is the ranks' time to save.
stop_with INT long --mca odls_base_sigkill_timeout 10
[ "$rc" -ne 0 ] || fail "mpirun exited with 0 after Ctrl-C"
"$tagger" --threads 1 train --train train.conllu --dev dev.conllu $model --epochs 100000 --minutes 0.01 --out long.npz --resume > long2.log
grep -q "resuming from long.npz.ckpt" long2.log || fail "did not resume after Ctrl-C"
# SIGUSR1 to mpirun reaches every rank at once: the same stop, without mpirun's kill sequence.
stop_with USR1 usr1
[ "$rc" -eq 130 ] || fail "mpirun exited with $rc after SIGUSR1, not 130 (the ranks' code after a stop)"
"${mpirun[@]}" -np 3 "$tagger" --threads 1 train --train train.conllu --dev dev.conllu $model --epochs 100000 --minutes 0.01 --out usr1.npz --resume > usr1b.log
grep -q "resuming from usr1.npz.ckpt" usr1b.log || fail "3 ranks did not resume after SIGUSR1"

# ---- a rank killed mid-run: mpirun stops the others; the last checkpoint is whole -----------
"${mpirun[@]}" -np 2 "$tagger" --threads 1 train --train train.conllu --dev dev.conllu $small --epochs 100000 --out lost.npz > lost.log 2>&1 &
pid=$!
wait_for lost.log "^epoch 3:"
victim=
for p in $(ranks_of lost.npz); do
  tr '\0' '\n' < /proc/$p/environ | grep -qx "OMPI_COMM_WORLD_RANK=1" && victim=$p
done
[ -n "$victim" ] || fail "found no rank 1 to kill"
kill -KILL "$victim"
timeout 60 tail --pid=$pid -f /dev/null || fail "the other rank went on after rank 1 was killed"
rc=0; wait $pid || rc=$?
pid=
[ "$rc" -ne 0 ] || fail "mpirun exited with 0 after losing a rank"
grep -q "exited on signal 9" lost.log || fail "mpirun did not report the lost rank: $(tail -5 lost.log)"
[ -z "$(ranks_of lost.npz)" ] || fail "a rank outlived the lost one"
"$tagger" --threads 1 train --train train.conllu --dev dev.conllu $model --epochs 100000 --minutes 0.01 --out lost.npz --resume > lost2.log
grep -q "resuming from lost.npz.ckpt" lost2.log || fail "the checkpoint left by the lost run does not resume"
echo "programs across ranks: all checks passed"
