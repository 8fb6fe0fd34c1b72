# Tiny data for the programs' end-to-end tests, made in the current folder when sourced:
# CoNLL-U (train.conllu, dev.conllu), labelled sentences (train.tsv, dev.tsv, dev.stsa) and a
# tiny "German-English" corpus (tr-train.de/.en, tr-dev.de/.en: numbers of animals, word by word).
words=(the a dog cat runs sleeps big small quickly .)
tags=(DET DET NOUN NOUN VERB VERB ADJ ADJ ADV PUNCT)
make_conllu() {  # file sentences seed
  local i j n w
  RANDOM=$3
  : > "$1"
  for ((i = 0; i < $2; i++)); do
    echo "# sent_id = $i" >> "$1"
    n=$((3 + RANDOM % 5))
    for ((j = 1; j <= n; j++)); do
      w=$((RANDOM % 10))
      printf '%d\t%s\t%s\t%s\t_\t_\t0\tdep\t_\t_\n' "$j" "${words[$w]}" "${words[$w]}" "${tags[$w]}" >> "$1"
    done
    echo >> "$1"
  done
}
make_conllu train.conllu 60 1
make_conllu dev.conllu 15 2
{ echo -e "sentence\tlabel"
  for i in $(seq 1 40); do echo -e "a great fine film $i\t1"; echo -e "an awful dull film $i\t0"; done; } > train.tsv
{ echo -e "sentence\tlabel"; echo -e "a great film\t1"; echo -e "a dull film\t0"; } > dev.tsv
printf '4 a great film\n0 an awful film\n' > dev.stsa

# A tiny "German-English" corpus: numbers of animals, word by word.
de=(ein zwei drei vier) en=(one two three four)
deanimal=(Hund Katze Vogel Fisch) enanimal=(dog cat bird fish)
deverb=(läuft schläft singt schwimmt) enverb=(runs sleeps sings swims)
make_parallel() {  # prefix pairs seed
  local i n a v
  RANDOM=$3
  : > "$1.de"; : > "$1.en"
  for ((i = 0; i < $2; i++)); do
    n=$((RANDOM % 4)) a=$((RANDOM % 4)) v=$((RANDOM % 4))
    echo "${de[$n]^} ${deanimal[$a]} ${deverb[$v]}." >> "$1.de"
    echo "${en[$n]^} ${enanimal[$a]} ${enverb[$v]}." >> "$1.en"
  done
}
make_parallel tr-train 120 3
make_parallel tr-dev 12 4
