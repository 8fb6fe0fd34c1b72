#include "search.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

#include "../autograd/ops.hpp"
#include "../autograd/tape.hpp"
#include "blocks.hpp"

namespace tg::models {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

void check(const Translator& model, const std::vector<std::vector<std::int64_t>>& sources,
           const SearchOptions& o, const char* who, bool non_autoregressive = false) {
  if (model.options().non_autoregressive != non_autoregressive)
    throw std::invalid_argument(
        std::string(who) +
        (non_autoregressive ? ": needs a non-autoregressive model (this one decodes token by token)"
                            : ": a non-autoregressive model decodes with mask_predict"));
  if (o.beam == 0)
    throw std::invalid_argument(std::string(who) + ": the beam size must be at least 1");
  if (o.batch_sentences == 0)
    throw std::invalid_argument(std::string(who) + ": batch_sentences must be at least 1");
  const std::size_t V = model.options().tgt_vocab;
  if (o.bos < 0 || o.eos < 0 || std::size_t(o.bos) >= V || std::size_t(o.eos) >= V)
    throw std::invalid_argument(std::string(who) + ": BOS " + std::to_string(o.bos) + " or EOS " +
                                std::to_string(o.eos) + " is not a target id (vocabulary of " +
                                std::to_string(V) + ")");
  for (std::size_t i = 0; i < sources.size(); ++i)
    if (sources[i].size() + 1 > model.options().max_len)
      throw std::invalid_argument(std::string(who) + ": source " + std::to_string(i) + " has " +
                                  std::to_string(sources[i].size()) +
                                  " tokens, more than the model's max_len " +
                                  std::to_string(model.options().max_len));
}

// How many tokens a translation of `source_length` tokens may have.
std::size_t length_limit(std::size_t source_length, const SearchOptions& o, std::size_t max_len) {
  const auto limit = static_cast<std::size_t>(o.max_len_ratio * source_length) + o.max_len_extra;
  return std::max<std::size_t>(1, std::min(limit, max_len - 1));
}

// Chunks of sentence indices of similar source length (so little padding is decoded).
std::vector<std::vector<std::size_t>> chunks(const std::vector<std::vector<std::int64_t>>& sources,
                                             std::size_t size) {
  std::vector<std::size_t> order(sources.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](auto a, auto b) { return sources[a].size() < sources[b].size(); });
  std::vector<std::vector<std::size_t>> out;
  for (std::size_t i = 0; i < order.size(); i += size)
    out.emplace_back(order.begin() + i, order.begin() + std::min(order.size(), i + size));
  return out;
}

// The sources of `chunk`, each repeated `copies` times: (B * copies, S), 0 = padding.
Ids source_ids(const std::vector<std::vector<std::int64_t>>& sources,
               const std::vector<std::size_t>& chunk, std::size_t copies) {
  std::size_t S = 1;
  for (std::size_t i : chunk) S = std::max(S, sources[i].size());
  Ids ids = xt::zeros<std::int64_t>({chunk.size() * copies, S});
  for (std::size_t b = 0; b < chunk.size(); ++b)
    for (std::size_t c = 0; c < copies; ++c)
      std::copy(sources[chunk[b]].begin(), sources[chunk[b]].end(), &ids(b * copies + c, 0));
  return ids;
}

Ids take_id_rows(const Ids& ids, const std::vector<std::size_t>& rows) {
  const std::size_t S = ids.shape()[1];
  Ids out = Ids::from_shape({rows.size(), S});
  for (std::size_t r = 0; r < rows.size(); ++r) std::copy_n(&ids(rows[r], 0), S, &out(r, 0));
  return out;
}

}  // namespace

void log_softmax_row(const Tensor& logits, std::size_t r, std::vector<double>& out) {
  const std::size_t V = logits.shape().back();
  const float* z = logits.data<float>().data() + r * V;
  const double m = *std::max_element(z, z + V);
  double sum = 0;
  for (std::size_t v = 0; v < V; ++v) sum += std::exp(z[v] - m);
  const double log_z = m + std::log(sum);
  out.resize(V);
  for (std::size_t v = 0; v < V; ++v) out[v] = z[v] - log_z;
}

namespace {

// One token at a time for every sentence, each chosen by choose(log-probabilities, row) from
// the model's distribution, until EOS or the length limit: greedy search and sampling.
template <class Choose>
std::vector<Translation> token_by_token(Translator& model,
                                        const std::vector<std::vector<std::int64_t>>& sources,
                                        const SearchOptions& o, Choose choose) {
  NoGradGuard no_grad;
  std::vector<Translation> out(sources.size());
  std::vector<double> logp;
  for (const auto& chunk : chunks(sources, o.batch_sentences)) {
    const std::size_t B = chunk.size();
    const Ids src = source_ids(sources, chunk, 1);
    const Mask src_mask = key_padding_mask(src);
    const Tensor memory = model.encode(src);
    nn::DecoderCache cache;
    Ids next = xt::full_like(Ids::from_shape({B, 1}), o.bos);
    std::vector<bool> done(B, false);
    for (std::size_t left = B; left > 0;) {
      const Tensor logits = model.decode(next, memory, src_mask, &cache);  // (B, 1, V)
      for (std::size_t b = 0; b < B; ++b) {
        if (done[b]) continue;
        Translation& t = out[chunk[b]];
        log_softmax_row(logits, b, logp);
        const std::int64_t token = choose(logp, chunk[b]);
        t.log_prob += logp[token];
        if (token == o.eos) t.finished = true;
        else t.tokens.push_back(token);
        next(b, 0) = token;
        if (t.finished ||
            t.tokens.size() >= length_limit(sources[chunk[b]].size(), o, model.options().max_len)) {
          done[b] = true;
          --left;
        }
      }
    }
  }
  return out;
}

}  // namespace

std::vector<Translation> greedy_search(Translator& model,
                                       const std::vector<std::vector<std::int64_t>>& sources,
                                       const SearchOptions& o) {
  check(model, sources, o, "greedy_search");
  return token_by_token(model, sources, o, [](const std::vector<double>& logp, std::size_t) {
    return static_cast<std::int64_t>(std::max_element(logp.begin(), logp.end()) - logp.begin());
  });
}

// ---- sampling ---------------------------------------------------------------------------------

std::vector<std::size_t> nucleus(const std::vector<double>& probs, double p) {
  std::vector<std::size_t> order(probs.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return probs[a] > probs[b]; });
  double total = 0;
  std::size_t n = 0;
  while (n < order.size() && (n == 0 || total < p)) total += probs[order[n++]];
  order.resize(n);
  return order;
}

std::vector<double> sampling_distribution(const std::vector<double>& logp,
                                          const SamplingOptions& o) {
  if (!(o.temperature > 0))
    throw std::invalid_argument("sampling: the temperature must be > 0, got " +
                                std::to_string(o.temperature));
  if (!(o.top_p > 0 && o.top_p <= 1))
    throw std::invalid_argument("sampling: top_p must be in (0, 1], got " +
                                std::to_string(o.top_p));
  // softmax(logp / temperature), shifted by the largest for stability
  const double m = *std::max_element(logp.begin(), logp.end());
  std::vector<double> p(logp.size());
  double sum = 0;
  for (std::size_t v = 0; v < p.size(); ++v) sum += p[v] = std::exp((logp[v] - m) / o.temperature);
  for (double& x : p) x /= sum;
  // the top_k most likely (ties by id), then the nucleus of what remains
  std::vector<std::size_t> keep = nucleus(p, 1.0);
  if (o.top_k > 0 && o.top_k < keep.size()) keep.resize(o.top_k);
  std::vector<double> kept(p.size(), 0.0);
  double kept_sum = 0;
  for (std::size_t v : keep) kept_sum += kept[v] = p[v];
  for (double& x : kept) x /= kept_sum;
  if (o.top_p >= 1) return kept;
  std::vector<double> out(p.size(), 0.0);
  double out_sum = 0;
  for (std::size_t v : nucleus(kept, o.top_p)) out_sum += out[v] = kept[v];
  for (double& x : out) x /= out_sum;
  return out;
}

std::size_t draw(const std::vector<double>& probs, Generator& gen) {
  const double u = gen.uniform();
  double cumulative = 0;
  std::size_t last = 0;
  for (std::size_t v = 0; v < probs.size(); ++v) {
    if (probs[v] <= 0) continue;
    cumulative += probs[v];
    last = v;
    if (u < cumulative) return v;
  }
  return last;  // u beyond the sum's rounding: the last token that may be drawn
}

std::vector<Translation> sample_search(Translator& model,
                                       const std::vector<std::vector<std::int64_t>>& sources,
                                       const SearchOptions& o, const SamplingOptions& sampling) {
  check(model, sources, o, "sample_search");
  // One generator per sentence, seeded from (seed, sentence): the same draws whatever the batching.
  std::vector<Generator> gens;
  for (std::size_t i = 0; i < sources.size(); ++i) gens.emplace_back(sampling.seed * 1000003 + i);
  return token_by_token(model, sources, o,
                        [&](const std::vector<double>& logp, std::size_t sentence) {
                          return static_cast<std::int64_t>(
                              draw(sampling_distribution(logp, sampling), gens[sentence]));
                        });
}

std::vector<Translation> beam_search(Translator& model,
                                     const std::vector<std::vector<std::int64_t>>& sources,
                                     const SearchOptions& o) {
  check(model, sources, o, "beam_search");
  NoGradGuard no_grad;
  const std::size_t K = o.beam, V = model.options().tgt_vocab;
  const auto penalised = [&](const Translation& t) {
    const double length = t.tokens.size() + (t.finished ? 1 : 0);
    return t.log_prob / std::pow((5.0 + length) / 6.0, o.length_penalty);
  };
  std::vector<Translation> out(sources.size());
  std::vector<double> logp;
  struct Candidate {
    double score;
    std::size_t row;
    std::int64_t token;
  };
  std::vector<Candidate> mine;  // one beam's continuations, reused across beams and steps
  const auto better = [](const Candidate& a, const Candidate& b) {
    if (a.score != b.score) return a.score > b.score;
    return a.row != b.row ? a.row < b.row : a.token < b.token;
  };
  for (const auto& chunk : chunks(sources, o.batch_sentences)) {
    // Rows: K per sentence still being searched ("active"), beam k of active sentence a in row a*K
    // + k.
    std::vector<std::size_t> active(chunk.size());
    std::iota(active.begin(), active.end(), 0);
    Ids src = source_ids(sources, chunk, K);
    Tensor memory = model.encode(source_ids(sources, chunk, 1));
    {
      std::vector<std::size_t> repeat;
      for (std::size_t b = 0; b < chunk.size(); ++b)
        for (std::size_t k = 0; k < K; ++k) repeat.push_back(b);
      memory = take_rows(memory, repeat);
    }
    // At the start every beam of a sentence is the same empty translation: only beam 0 counts.
    std::vector<Translation> beams(chunk.size() * K);
    std::vector<double> beam_score(beams.size(), kNegInf);
    for (std::size_t b = 0; b < chunk.size(); ++b) beam_score[b * K] = 0;
    std::vector<std::vector<Translation>> finished(chunk.size());
    Mask src_mask = key_padding_mask(src);  // changes only when finished sentences leave the batch
    nn::DecoderCache cache;
    Ids next = xt::full_like(Ids::from_shape({beams.size(), 1}), o.bos);
    while (!active.empty()) {
      const Tensor logits = model.decode(next, memory, src_mask, &cache);  // (rows, 1, V)
      std::vector<std::size_t> keep_active, parents;
      std::vector<Translation> next_beams;
      std::vector<double> next_score;
      for (std::size_t a = 0; a < active.size(); ++a) {
        const std::size_t b = active[a];
        // The 2K best continuations of each beam, then the 2K best of those.
        std::vector<Candidate> candidates;
        for (std::size_t k = 0; k < K; ++k) {
          const std::size_t row = a * K + k;
          if (beam_score[row] == kNegInf) continue;
          log_softmax_row(logits, row, logp);
          mine.resize(V);
          for (std::size_t v = 0; v < V; ++v)
            mine[v] = {beam_score[row] + logp[v], row, std::int64_t(v)};
          const std::size_t n = std::min(V, 2 * K);
          std::partial_sort(mine.begin(), mine.begin() + n, mine.end(), better);
          candidates.insert(candidates.end(), mine.begin(), mine.begin() + n);
        }
        std::sort(candidates.begin(), candidates.end(), better);
        const std::size_t limit =
            length_limit(sources[chunk[b]].size(), o, model.options().max_len);
        std::vector<Translation> alive;
        std::vector<std::size_t> alive_parent;
        std::vector<double> alive_score;
        for (std::size_t rank = 0; rank < candidates.size() && alive.size() < K; ++rank) {
          const Candidate& c = candidates[rank];
          Translation t = beams[c.row];
          t.log_prob = c.score;
          if (c.token == o.eos) {
            if (rank < K) {  // an ending counts only among the K best candidates
              t.finished = true;
              finished[b].push_back(std::move(t));
            }
            continue;
          }
          t.tokens.push_back(c.token);
          alive.push_back(std::move(t));
          alive_parent.push_back(c.row);
          alive_score.push_back(c.score);
        }
        const bool at_limit = !alive.empty() && alive[0].tokens.size() >= limit;
        if (finished[b].size() >= K || at_limit || alive.empty()) {
          if (finished[b].size() < K)  // cut at the length limit: the live beams compete too
            for (auto& t : alive) finished[b].push_back(std::move(t));
          const auto best = std::max_element(
              finished[b].begin(), finished[b].end(),
              [&](const auto& x, const auto& y) { return penalised(x) < penalised(y); });
          out[chunk[b]] = *best;
          continue;
        }
        keep_active.push_back(b);
        for (std::size_t k = 0; k < K;
             ++k) {  // fewer than K alive (tiny vocabularies): pad with dead beams
          const bool real = k < alive.size();
          next_beams.push_back(real ? alive[k] : Translation{});
          next_score.push_back(real ? alive_score[k] : kNegInf);
          parents.push_back(real ? alive_parent[k] : alive_parent[0]);
        }
      }
      if (keep_active.empty()) break;
      // Reorder the cache to the surviving beams; when sentences finished, drop their rows.
      const bool shrink = keep_active.size() != active.size();
      cache.select(parents, shrink);
      if (shrink) {
        memory = take_rows(memory, parents);
        src = take_id_rows(src, parents);
        src_mask = key_padding_mask(src);
      }
      active = std::move(keep_active);
      beams = std::move(next_beams);
      beam_score = std::move(next_score);
      next = Ids::from_shape({beams.size(), 1});
      for (std::size_t r = 0; r < beams.size(); ++r)
        next(r, 0) = beams[r].tokens.empty() ? o.bos : beams[r].tokens.back();
    }
  }
  return out;
}

// ---- non-autoregressive decoding: mask-predict ------------------------------------------------

std::vector<std::size_t> least_confident(const std::vector<double>& log_probs, std::size_t n) {
  std::vector<std::size_t> order(log_probs.size());
  std::iota(order.begin(), order.end(), 0);
  n = std::min(n, order.size());
  std::partial_sort(order.begin(), order.begin() + n, order.end(),
                    [&](std::size_t a, std::size_t b) {
                      return log_probs[a] != log_probs[b] ? log_probs[a] < log_probs[b] : a < b;
                    });
  order.resize(n);
  std::sort(order.begin(), order.end());
  return order;
}

std::vector<Translation> mask_predict(Translator& model,
                                      const std::vector<std::vector<std::int64_t>>& sources,
                                      const SearchOptions& o) {
  check(model, sources, o, "mask_predict", true);
  const std::size_t V = model.options().tgt_vocab;
  if (o.mask < 0 || std::size_t(o.mask) >= V)
    throw std::invalid_argument("mask_predict: the mask token " + std::to_string(o.mask) +
                                " is not a target id (vocabulary of " + std::to_string(V) + ")");
  if (o.mask == 0 || o.mask == o.bos || o.mask == o.eos)
    throw std::invalid_argument("mask_predict: the mask token " + std::to_string(o.mask) +
                                " is padding (0), BOS or EOS; it needs an id of its own");
  if (V <= 4)
    throw std::invalid_argument(
        "mask_predict: the target vocabulary holds only padding, BOS, EOS and the mask");
  if (o.refine == 0)
    throw std::invalid_argument("mask_predict: refine must be at least 1 (one pass)");
  NoGradGuard no_grad;
  std::vector<Translation> out(sources.size());
  std::vector<double> logp;
  for (const auto& chunk : chunks(sources, o.batch_sentences)) {
    const Ids src = source_ids(sources, chunk, 1);
    const Tensor memory = model.encode(src);
    // The candidates: row r decodes sentence owner[r] at length lengths[r], the `beam` most
    // likely lengths of each sentence (fewer when several classes clip to one length).
    std::vector<std::size_t> owner, lengths;
    {
      const Tensor classes = model.length_logits(memory, src);  // (B, 2R + 1)
      const std::size_t L = classes.shape()[1];
      const float* z = classes.data<float>().data();
      for (std::size_t b = 0; b < chunk.size(); ++b) {
        std::vector<std::size_t> order(L);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(),
                         [&](auto x, auto y) { return z[b * L + x] > z[b * L + y]; });
        std::vector<std::size_t> mine;
        for (std::size_t k = 0; k < L && mine.size() < o.beam; ++k) {
          const std::size_t length =
              model.class_length(sources[chunk[b]].size(), std::int64_t(order[k]));
          if (std::find(mine.begin(), mine.end(), length) == mine.end()) mine.push_back(length);
        }
        for (std::size_t length : mine) owner.push_back(b), lengths.push_back(length);
      }
    }
    const std::size_t R = owner.size(), T = *std::max_element(lengths.begin(), lengths.end());
    const Tensor rows_memory = take_rows(memory, owner);
    const Mask rows_mask = key_padding_mask(take_id_rows(src, owner));
    Ids tokens =
        xt::zeros<std::int64_t>({R, T});  // the mask token at each real position, padding after
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t t = 0; t < lengths[r]; ++t) tokens(r, t) = o.mask;
    std::vector<std::vector<double>> confidence(R);  // log-probability of each row's tokens
    for (std::size_t r = 0; r < R; ++r) confidence[r].assign(lengths[r], 0.0);
    for (std::size_t iteration = 0; iteration < o.refine; ++iteration) {
      if (iteration > 0) {  // mask again the n least confident tokens of each row
        bool any = false;
        for (std::size_t r = 0; r < R; ++r) {
          const std::size_t n = lengths[r] * (o.refine - iteration) / o.refine;
          for (std::size_t t : least_confident(confidence[r], n)) tokens(r, t) = o.mask, any = true;
        }
        if (!any) break;
      }
      const Tensor logits =
          model.decode(tokens, rows_memory, rows_mask);  // (R, T, V): R T rows of V
      for (std::size_t r = 0; r < R; ++r)
        for (std::size_t t = 0; t < lengths[r]; ++t) {
          if (tokens(r, t) != o.mask) continue;  // kept from an earlier iteration
          log_softmax_row(logits, r * T + t, logp);
          for (std::int64_t special : {std::int64_t{0}, o.bos, o.eos, o.mask})
            logp[special] = kNegInf;
          const auto best = std::max_element(logp.begin(), logp.end()) - logp.begin();
          tokens(r, t) = best;
          confidence[r][t] = logp[best];
        }
    }
    // Each sentence takes its candidate of best mean log-probability.
    std::vector<double> best_score(chunk.size(), kNegInf);
    for (std::size_t r = 0; r < R; ++r) {
      double total = 0;
      for (double c : confidence[r]) total += c;
      const double score = total / lengths[r];
      if (score <= best_score[owner[r]]) continue;
      best_score[owner[r]] = score;
      Translation& t = out[chunk[owner[r]]];
      t.tokens.assign(&tokens(r, 0), &tokens(r, 0) + lengths[r]);
      t.log_prob = total;
      t.finished = true;
    }
  }
  return out;
}

}  // namespace tg::models
