#define BOOST_TEST_MODULE tagger_learns
#include "fixtures.hpp"
#include "testing.hpp"

using namespace tg;

// The tagger drives its training loss near zero on 20 sentences whose tags depend on the word
// and on the word before it (so it must use positions).
BOOST_AUTO_TEST_CASE(tagger_fits_twenty_sentences) {
  Generator gen(3);
  const std::size_t N = 20, T = 8, V = 12;
  Ids ids = xt::zeros<std::int64_t>({N, T}), tags = xt::full_like(ids, std::int64_t{-100});
  for (std::size_t n = 0; n < N; ++n) {
    const std::size_t len = 4 + gen.below(T - 3);
    for (std::size_t t = 0; t < len; ++t) {
      ids(n, t) = 2 + static_cast<std::int64_t>(gen.below(V - 2));
      tags(n, t) = (ids(n, t) + (t > 0 ? ids(n, t - 1) : 0)) % 4;
    }
  }
  models::TaggerOptions options = fixtures::small_tagger(V, 4);
  options.encoder.d_model = 32, options.encoder.ff = 64, options.encoder.layers = 2;
  options.encoder.relative_k = 4;
  models::Tagger tagger(options, gen);
  nn::Adam opt(tagger.named_parameters(), {.lr = 3e-3});
  const auto [first, last] = testing::fit(opt, 300, [&] { return tagger.loss(ids, tags); });
  BOOST_TEST_MESSAGE("loss " << first << " -> " << last);
  BOOST_TEST(first > 1.0);
  BOOST_TEST(last < 0.02);
}
