#include "text.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>
#include <stdexcept>

#include "characters.hpp"

namespace tg::models {
namespace {

// ---- characters ---------------------------------------------------------------------------

char32_t lower(char32_t c) {
  if (c >= U'A' && c <= U'Z') return c + 32;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;  // Latin-1 capitals (not ×)
  return c;
}

bool is_space(char32_t c) {
  return c == U' ' || (c >= U'\t' && c <= U'\r') || c == 0xA0 || (c >= 0x2000 && c <= 0x200B) ||
         c == 0x3000;
}

bool is_punct(char32_t c) {
  if (c < 0x80)
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
           (c >= 0x7B && c <= 0x7E);
  if (c >= 0xA1 && c <= 0xBF) return c != 0xAA && c != 0xB5 && c != 0xBA;  // not ª µ º (letters)
  return c == 0xD7 || c == 0xF7 || (c >= 0x2010 && c <= 0x205E);
}

bool is_digit(char32_t c) { return c >= U'0' && c <= U'9'; }
bool is_word(char32_t c) { return !is_space(c) && !is_punct(c); }

}  // namespace

std::string lowercase_text(const std::string& text) {
  std::u32string s = decode_utf8(text);
  for (auto& c : s) c = lower(c);
  return encode_utf8(s);
}

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> words;
  std::istringstream in(text);
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

std::string capitalize_first(const std::string& text) {
  std::u32string s = decode_utf8(text);
  for (auto& c : s) {
    if (!is_word(c)) continue;
    if ((c >= U'a' && c <= U'z') || (c >= 0xE0 && c <= 0xFE && c != 0xF7)) c -= 32;
    break;
  }
  return encode_utf8(s);
}

std::vector<std::string> tokenize(const std::string& line, bool lowercase) {
  std::u32string s = decode_utf8(line);
  if (lowercase)
    for (auto& c : s) c = lower(c);
  std::vector<std::string> tokens;
  std::u32string word;
  const auto flush = [&] {
    if (!word.empty()) tokens.push_back(encode_utf8(word));
    word.clear();
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char32_t c = s[i];
    if (is_space(c)) {
      flush();
      continue;
    }
    if (!is_punct(c)) {
      word += c;
      continue;
    }
    const char32_t prev = i > 0 ? s[i - 1] : U' ', next = i + 1 < s.size() ? s[i + 1] : U' ';
    const bool inside_word = is_word(prev) && is_word(next);
    if (c == U'-' && inside_word) word += c;                                           // t-shirt
    else if ((c == U'.' || c == U',') && is_digit(prev) && is_digit(next)) word += c;  // 3.5, 1,000
    else if (c == U'\'' && is_word(prev) && is_word(next) && !word.empty()) {          // man 's
      flush();
      word += c;
    } else {
      flush();
      tokens.push_back(encode_utf8(std::u32string(1, c)));
    }
  }
  flush();
  return tokens;
}

std::string detokenize(const std::vector<std::string>& tokens) {
  static const std::string closing[] = {",", ".", "!", "?", ";", ":", ")",
                                        "]", "}", "%", "…", "“", "»"};
  static const std::string opening[] = {"(", "[", "{", "„", "«", "¿", "¡"};
  const auto among = [](const std::string& t, const auto& set) {
    return std::find(std::begin(set), std::end(set), t) != std::end(set);
  };
  std::string out;
  bool glue_next = true, quote_open = false;
  for (const auto& t : tokens) {
    bool glue = glue_next || among(t, closing) || (t.size() > 1 && t[0] == '\'');
    glue_next = among(t, opening);
    if (t == "\"") {  // straight quotes alternate: opening, closing, ...
      quote_open = !quote_open;
      if (quote_open) glue_next = true;
      else glue = true;
    }
    if (!glue) out += ' ';
    out += t;
  }
  return out;
}

// ---- BLEU -----------------------------------------------------------------------------------

std::string tokenize_13a(const std::string& input) {
  std::string line = input;
  const auto replace_all = [&](const std::string& from, const std::string& to) {
    for (std::size_t p = line.find(from); p != std::string::npos;
         p = line.find(from, p + to.size()))
      line.replace(p, from.size(), to);
  };
  replace_all("<skipped>", "");
  replace_all("-\n", "");
  replace_all("\n", " ");
  if (line.find('&') != std::string::npos) {
    replace_all("&quot;", "\"");
    replace_all("&amp;", "&");
    replace_all("&lt;", "<");
    replace_all("&gt;", ">");
  }
  // 1. Symbols become tokens: { | } ~ [ \ ] ^ _ ` space ! " # $ % & ( ) * + : ; < = > ? @ /
  const auto symbol = [](unsigned char c) {
    return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') ||
           (c >= '(' && c <= '+') || (c >= ':' && c <= '@') || c == '/';
  };
  std::string s = " ";
  for (unsigned char c : line) {
    if (symbol(c)) s += std::string{' ', static_cast<char>(c), ' '};
    else s += static_cast<char>(c);
  }
  s += ' ';
  // 2-4. Pairs (a, b) rewritten left to right without overlap, like a regex substitution.
  const auto rewrite = [](const std::string& in, auto matches, auto emit) {
    std::string out;
    std::size_t i = 0;
    for (; i + 1 < in.size(); ++i) {
      if (matches(in[i], in[i + 1])) {
        out += emit(in[i], in[i + 1]);
        ++i;
      } else {
        out += in[i];
      }
    }
    if (i < in.size()) out += in[i];
    return out;
  };
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  const auto point = [](char c) { return c == '.' || c == ','; };
  s = rewrite(
      s,
      [&](char a, char b) { return !digit(a) && point(b); },  // period or comma not after a digit
      [](char a, char b) {
        return std::string{a, ' ', b, ' '};
      });
  s = rewrite(
      s, [&](char a, char b) { return point(a) && !digit(b); },  // ... nor before one
      [](char a, char b) {
        return std::string{' ', a, ' ', b};
      });
  s = rewrite(
      s, [&](char a, char b) { return digit(a) && b == '-'; },  // a dash after a digit
      [](char a, char b) {
        return std::string{a, ' ', b, ' '};
      });
  // Collapse runs of spaces.
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    while (i < s.size() && s[i] == ' ') ++i;
    std::size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) {
      if (!out.empty()) out += ' ';
      out.append(s, i, j - i);
    }
    i = j;
  }
  return out;
}

namespace {

using NgramCounts = std::map<std::vector<std::string>, std::size_t>;

NgramCounts ngrams(const std::vector<std::string>& words, std::size_t n) {
  NgramCounts counts;
  for (std::size_t i = 0; i + n <= words.size(); ++i)
    ++counts[{words.begin() + i, words.begin() + i + n}];
  return counts;
}

}  // namespace

Bleu corpus_bleu(const std::vector<std::string>& hypotheses,
                 const std::vector<std::string>& references, bool lower) {
  if (hypotheses.size() != references.size())
    throw std::invalid_argument("corpus_bleu: " + std::to_string(hypotheses.size()) +
                                " hypotheses but " + std::to_string(references.size()) +
                                " references (one each)");
  Bleu b;
  for (std::size_t i = 0; i < hypotheses.size(); ++i) {
    const auto hyp =
        split_words(tokenize_13a(lower ? lowercase_text(hypotheses[i]) : hypotheses[i]));
    const auto ref =
        split_words(tokenize_13a(lower ? lowercase_text(references[i]) : references[i]));
    b.hyp_length += hyp.size();
    b.ref_length += ref.size();
    for (std::size_t n = 1; n <= 4; ++n) {
      const NgramCounts h = ngrams(hyp, n), r = ngrams(ref, n);
      for (const auto& [gram, count] : h) {
        b.totals[n - 1] += count;
        const auto it = r.find(gram);
        if (it != r.end()) b.matches[n - 1] += std::min(count, it->second);  // clipped
      }
    }
  }
  double smooth = 1, log_sum = 0;
  bool zero = b.hyp_length == 0 || b.matches[0] == 0;
  for (std::size_t n = 0; n < 4; ++n) {
    if (b.totals[n] == 0) {
      zero = true;
      continue;
    }
    if (b.matches[n] == 0) {
      smooth *= 2;
      b.precisions[n] = 100.0 / (smooth * b.totals[n]);
    } else {
      b.precisions[n] = 100.0 * b.matches[n] / b.totals[n];
    }
    log_sum += std::log(b.precisions[n]);
  }
  if (b.hyp_length == 0) b.brevity_penalty = 0;
  else if (b.hyp_length < b.ref_length)
    b.brevity_penalty = std::exp(1.0 - double(b.ref_length) / b.hyp_length);
  else b.brevity_penalty = 1;
  b.score = zero ? 0.0 : b.brevity_penalty * std::exp(log_sum / 4);
  return b;
}

double sentence_bleu(const std::vector<std::string>& hypothesis,
                     const std::vector<std::string>& reference) {
  if (hypothesis.empty()) return 0;
  double log_sum = 0;
  for (std::size_t n = 1; n <= 4; ++n) {
    const NgramCounts h = ngrams(hypothesis, n), r = ngrams(reference, n);
    double matches = 0, total = 0;
    for (const auto& [gram, count] : h) {
      total += count;
      const auto it = r.find(gram);
      if (it != r.end()) matches += std::min(count, it->second);
    }
    if (n == 1 && matches == 0) return 0;
    log_sum += n == 1 ? std::log(matches / total) : std::log((matches + 1) / (total + 1));
  }
  const double hyp = double(hypothesis.size()), ref = double(reference.size());
  const double brevity = hyp < ref ? std::exp(1.0 - ref / hyp) : 1.0;
  return brevity * std::exp(log_sum / 4);
}

std::string Bleu::to_string() const {
  char buf[256];
  std::snprintf(
      buf, sizeof buf,
      "BLEU = %.2f %.1f/%.1f/%.1f/%.1f (BP = %.3f ratio = %.3f hyp_len = %zu ref_len = %zu)", score,
      precisions[0], precisions[1], precisions[2], precisions[3], brevity_penalty,
      ref_length ? double(hyp_length) / ref_length : 0.0, hyp_length, ref_length);
  return buf;
}

std::string bleu_signature(bool lower) {
  return std::string("nrefs:1|case:") + (lower ? "lc" : "mixed") +
         "|eff:no|tok:13a|smooth:exp|version:tapegrad-" + TAPEGRAD_VERSION;
}

}  // namespace tg::models
