// Sampling for the translator (models/search.hpp): the nucleus, the reshaped distribution, and
// draws that follow it (a chi-square test with a fixed seed).
#define BOOST_TEST_MODULE sampling
#include <numeric>

#include "testing.hpp"

using namespace tg;
using namespace tg::models;
namespace tt = boost::test_tools;

BOOST_AUTO_TEST_CASE(the_nucleus_is_the_smallest_prefix_reaching_p) {
  const std::vector<double> probs = {0.1, 0.5, 0.2, 0.2};
  BOOST_TEST(nucleus(probs, 0.5) == (std::vector<std::size_t>{1}));
  BOOST_TEST(nucleus(probs, 0.6) == (std::vector<std::size_t>{1, 2}));  // ties by id
  BOOST_TEST(nucleus(probs, 0.7) == (std::vector<std::size_t>{1, 2}));
  BOOST_TEST(nucleus(probs, 0.71) == (std::vector<std::size_t>{1, 2, 3}));
  BOOST_TEST(nucleus(probs, 1.0).size() == 4u);
  BOOST_TEST(nucleus(probs, 1e-9) == (std::vector<std::size_t>{1}));  // never empty
  // On random distributions: the set reaches p, one token fewer does not, and no other set of
  // its size holds more probability (it is the most likely tokens).
  Generator gen(3);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<double> p(12);
    for (double& x : p) x = std::pow(gen.uniform(), 3);
    const double sum = std::accumulate(p.begin(), p.end(), 0.0);
    for (double& x : p) x /= sum;
    const double target = 0.05 + 0.9 * gen.uniform();
    const auto set = nucleus(p, target);
    double mass = 0;
    for (std::size_t v : set) mass += p[v];
    BOOST_TEST(mass >= target - 1e-12);
    BOOST_TEST(mass - p[set.back()] < target);
    std::vector<double> sorted = p;
    std::sort(sorted.rbegin(), sorted.rend());
    BOOST_TEST(mass == std::accumulate(sorted.begin(), sorted.begin() + set.size(), 0.0),
               tt::tolerance(1e-12));
  }
}

BOOST_AUTO_TEST_CASE(the_distribution_is_tempered_cut_and_renormalised) {
  const std::vector<double> logp = {std::log(0.4), std::log(0.3), std::log(0.2), std::log(0.1)};
  const auto same = sampling_distribution(logp, {});
  for (std::size_t v = 0; v < 4; ++v)
    BOOST_TEST(same[v] == std::exp(logp[v]), tt::tolerance(1e-12));
  const auto top2 = sampling_distribution(logp, {.top_k = 2});
  BOOST_TEST(top2[0] == 0.4 / 0.7, tt::tolerance(1e-12));
  BOOST_TEST(top2[2] == 0.0);
  const auto nucleus_07 = sampling_distribution(logp, {.top_p = 0.7});  // {0.4, 0.3}
  BOOST_TEST(nucleus_07[1] == 0.3 / 0.7, tt::tolerance(1e-12));
  BOOST_TEST(nucleus_07[3] == 0.0);
  const auto cold = sampling_distribution(logp, {.temperature = 0.5});  // p^2, renormalised
  BOOST_TEST(cold[0] == 0.16 / 0.30, tt::tolerance(1e-12));
  BOOST_CHECK_THROW(sampling_distribution(logp, {.temperature = 0}), std::invalid_argument);
  BOOST_CHECK_THROW(sampling_distribution(logp, {.top_p = 0}), std::invalid_argument);
}

// 20,000 draws from a reshaped distribution: their counts against the expected ones.  With 3
// degrees of freedom, chi-square exceeds 16.27 with probability 0.001 when the draws follow it.
BOOST_AUTO_TEST_CASE(draws_follow_the_distribution) {
  std::vector<double> logp = {-0.5, -1.0, -1.5, -2.5, -3.0, -4.0};
  const auto p = sampling_distribution(logp, {.temperature = 0.8, .top_k = 4});
  Generator gen(7);
  const int n = 20000;
  std::vector<int> count(p.size(), 0);
  for (int i = 0; i < n; ++i) ++count[draw(p, gen)];
  double chi2 = 0;
  for (std::size_t v = 0; v < p.size(); ++v) {
    if (p[v] == 0) {
      BOOST_TEST(count[v] == 0);  // a token cut away is never drawn
      continue;
    }
    chi2 += std::pow(count[v] - n * p[v], 2) / (n * p[v]);
  }
  BOOST_TEST(chi2 < 16.27);
  // and a distribution that is not the one drawn from fails the same test
  const auto other = sampling_distribution(logp, {.temperature = 1.0, .top_k = 4});
  double chi2_other = 0;
  for (std::size_t v = 0; v < 4; ++v)
    chi2_other += std::pow(count[v] - n * other[v], 2) / (n * other[v]);
  BOOST_TEST(chi2_other > 16.27);
}
