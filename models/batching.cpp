#include "batching.hpp"

#include <algorithm>
#include <numeric>

namespace tg::models {

std::vector<std::vector<std::size_t>> make_batches(const std::vector<std::size_t>& lengths, std::size_t batch_tokens,
                                                   std::size_t max_batch, Generator* shuffle) {
  std::vector<std::size_t> order(lengths.size());
  std::iota(order.begin(), order.end(), 0);
  if (shuffle)
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[shuffle->below(i)]);
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
    if (!current.empty() && (current.size() >= max_batch || next_longest * (current.size() + 1) > batch_tokens)) {
      batches.push_back(std::move(current));
      current = {};
      longest = 0;
    }
    current.push_back(i);
    longest = std::max(longest, lengths[i]);
  }
  if (!current.empty()) batches.push_back(std::move(current));
  if (shuffle)
    for (std::size_t i = batches.size(); i > 1; --i) std::swap(batches[i - 1], batches[shuffle->below(i)]);
  return batches;
}

}  // namespace tg::models
