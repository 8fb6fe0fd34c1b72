// Text for translation: word-level tokenisation, and corpus BLEU computed the way sacreBLEU
// computes it by default (13a tokenisation, BLEU-4, one reference, brevity penalty).
#pragma once

#include <array>
#include <string>
#include <vector>

namespace tg::models {

// Splits a line into words and punctuation marks: "Zwei Männer, (lachend)." ->
// "zwei männer , ( lachend ) ." when lowercasing.  Punctuation is ASCII punctuation, the
// Latin-1 marks (« » ¡ ¿ ...) and General Punctuation (– — „ “ …); an apostrophe starts a
// token ("man's" -> "man 's"), and a hyphen or a point between letters or digits stays inside
// the word ("t-shirt", "3.5").  Lowercasing covers ASCII and Latin-1 letters (Ä -> ä).
// Throws std::invalid_argument on text that is not UTF-8.
std::vector<std::string> tokenize(const std::string& line, bool lower);
// The tokens as text: spaces between words, none before closing marks or after opening ones.
std::string detokenize(const std::vector<std::string>& tokens);
// Lowercases ASCII and Latin-1 capitals in UTF-8 text (the one lowercaser: vocabularies,
// subword features and the tokeniser all use it).
std::string lowercase_text(const std::string& text);
// Splits on whitespace (spaces, tabs), for text that is tokenised already: "a  b\tc" -> a b c.
std::vector<std::string> split_words(const std::string& text);
// Capitalises the first letter (ASCII or Latin-1), for output of a model that reads and writes
// lowercase: "a dog runs." -> "A dog runs."
std::string capitalize_first(const std::string& text);

// The 13a tokenisation of mteval-v13a.pl (sacreBLEU's default): punctuation and symbols become
// tokens, except periods and commas inside numbers and dashes not after a digit.
std::string tokenize_13a(const std::string& line);

struct Bleu {
  double score = 0;                      // 0..100
  std::array<double, 4> precisions{};    // n-gram precisions, 0..100
  std::array<std::size_t, 4> matches{};  // clipped n-gram matches
  std::array<std::size_t, 4> totals{};   // n-grams in the hypotheses
  double brevity_penalty = 0;
  std::size_t hyp_length = 0, ref_length = 0;
  std::string to_string()
      const;  // "BLEU = 35.12 66.1/42.0/28.9/20.1 (BP = 0.98 ratio = 0.98 hyp_len = ...)"
};

// How a score was computed, in sacreBLEU's signature format, so that scores can be compared:
// "nrefs:1|case:lc|eff:no|tok:13a|smooth:exp|version:tapegrad-0.1.0" (case:mixed when cased).
std::string bleu_signature(bool lower);

// Corpus BLEU of hypotheses against one reference each (same count, or std::invalid_argument).
// Both sides are 13a-tokenised (and lowercased first if `lower`).  An n-gram order with no match
// gets sacreBLEU's "exp" smoothing (precision 100 / (2^k * total) for the k-th such order); no
// hypothesis n-gram at all for some order, or no unigram match, gives 0.
Bleu corpus_bleu(const std::vector<std::string>& hypotheses,
                 const std::vector<std::string>& references, bool lower);

// Sentence-level BLEU+1 (Lin and Och 2004) of tokens against one reference, in [0, 1]: n-gram
// precisions for n = 2..4 get one added to matches and totals, so that a sentence without a
// 4-gram match still scores by its other orders; brevity penalty as corpus BLEU.  An empty
// hypothesis, or one without a unigram match, scores 0.  The cost of minimum risk training.
double sentence_bleu(const std::vector<std::string>& hypothesis,
                     const std::vector<std::string>& reference);

}  // namespace tg::models
