#include "batching.hpp"

#include <algorithm>
#include <numeric>

namespace tg::models {

std::vector<std::vector<std::size_t>> make_batches(const std::vector<std::size_t>& lengths,
                                                   std::size_t batch_tokens, std::size_t max_batch,
                                                   Generator* shuffle) {
  std::vector<std::size_t> order(lengths.size());
  std::iota(order.begin(), order.end(), 0);
  if (shuffle)
    for (std::size_t i = order.size(); i > 1; --i)
      std::swap(order[i - 1], order[shuffle->below(i)]);
  // Sort by length inside windows, so batches hold similar lengths but vary between epochs.
  const std::size_t window = std::max<std::size_t>(1, 50 * max_batch);
  for (std::size_t start = 0; start < order.size(); start += window) {
    auto end = order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), start + window));
    std::stable_sort(order.begin() + static_cast<std::ptrdiff_t>(start), end,
                     [&](std::size_t a, std::size_t b) { return lengths[a] < lengths[b]; });
  }
  std::vector<std::vector<std::size_t>> batches;
  std::vector<std::size_t> current;
  std::size_t longest = 0;
  for (std::size_t i : order) {
    const std::size_t next_longest = std::max(longest, lengths[i]);
    if (!current.empty() &&
        (current.size() >= max_batch || next_longest * (current.size() + 1) > batch_tokens)) {
      batches.push_back(std::move(current));
      current = {};
      longest = 0;
    }
    current.push_back(i);
    longest = std::max(longest, lengths[i]);
  }
  if (!current.empty()) batches.push_back(std::move(current));
  if (shuffle)
    for (std::size_t i = batches.size(); i > 1; --i)
      std::swap(batches[i - 1], batches[shuffle->below(i)]);
  return batches;
}

std::function<std::vector<std::vector<std::size_t>>(std::size_t)> shuffled_batches(
    std::vector<std::size_t> lengths, std::size_t batch_tokens, std::size_t max_batch,
    std::uint64_t seed) {
  return [lengths = std::move(lengths), batch_tokens, max_batch, seed](std::size_t epoch) {
    Generator shuffle(seed * 1000003 + epoch);
    return make_batches(lengths, batch_tokens, max_batch, &shuffle);
  };
}

// ---- ensembles ------------------------------------------------------------------------------

MemberOrders::MemberOrders(std::function<Batches(std::size_t)> make, std::size_t members,
                           std::uint64_t seed)
    : make_(std::move(make)), members_(members), seed_(seed) {}

const MemberOrders::Batches& MemberOrders::epoch(std::size_t e) {
  if (e != epoch_) {
    batches_ = make_(e);
    orders_.assign(members_, {});
    for (std::size_t k = 0; k < members_; ++k) {
      orders_[k].resize(batches_.size());
      std::iota(orders_[k].begin(), orders_[k].end(), 0);
      if (k == 0) continue;
      Generator shuffle(seed_ * 1000003 + e + 7919 * k);
      for (std::size_t i = orders_[k].size(); i > 1; --i)
        std::swap(orders_[k][i - 1], orders_[k][shuffle.below(i)]);
    }
    at_.clear();
    for (std::size_t i = 0; i < batches_.size(); ++i)  // each example is in one batch an epoch
      for (std::size_t j = 0; j < batches_[i].size(); ++j) at_[batches_[i][j]] = {i, j};
    epoch_ = e;
  }
  return batches_;
}

std::vector<std::size_t> MemberOrders::member(const std::vector<std::size_t>& batch,
                                              std::size_t k) const {
  if (k == 0 || batch.empty()) return batch;
  const auto it = at_.find(batch[0]);
  if (it == at_.end())
    throw std::logic_error("MemberOrders: a batch that is not in the current epoch");
  const auto [step, first] = it->second;
  const auto& whole = batches_[step];  // member 0's batch; `batch` is all of it or one rank's share
  const auto& theirs = batches_[orders_.at(k)[step]];
  // The same share of member k's batch: [first, first + n) of N examples maps to
  // [first * M / N, (first + n) * M / N) of M, so the ranks' shares again cover it exactly.
  const std::size_t N = whole.size(), M = theirs.size();
  return {theirs.begin() + first * M / N, theirs.begin() + (first + batch.size()) * M / N};
}

}  // namespace tg::models
