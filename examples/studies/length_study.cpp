// Length generalisation on real data (study 1 of docs/positions.md): the part-of-speech tagger
// on UD English EWT, trained only on sentences of at most 20 words, then scored on the whole
// dev set binned by sentence length.  Every scheme of positions gets the same model, data,
// seed and number of epochs; only the scheme changes.  Prints a Markdown table and draws it.
//
//   build/examples/length_study --data data/ud-english-ewt [--max-train-len 20] [--epochs 8]
//                               [--conv-width 0] [--schemes none rope ... kernelized] [--svg
//                               runs/length-study.svg]
//
// The tagger's convolution over neighbouring words (on by default) gives it local order by
// itself; --conv-width 0 leaves the scheme as the only source of order.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "../programs/cli.hpp"

using namespace tg;
namespace fs = std::filesystem;

namespace {

struct Bins {
  std::vector<std::size_t> upper;  // a sentence of n words falls in the first bin with n <= upper
  std::size_t of(std::size_t words) const {
    std::size_t b = 0;
    while (b < upper.size() && words > upper[b]) ++b;
    return b;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    std::size_t from = 1;
    for (std::size_t u : upper)
      out.push_back(std::to_string(from) + "-" + std::to_string(u)), from = u + 1;
    out.push_back(std::to_string(from) + "+");
    return out;
  }
};

struct Row {
  std::string scheme;
  std::vector<double> by_bin;  // accuracy per bin, then overall
  double seconds = 0;
};

// Accuracy per length bin, and over all tokens (the last entry).
std::vector<double> score_by_length(const models::TaggingPipeline& t,
                                    const std::vector<models::TaggedSentence>& dev,
                                    const Bins& bins) {
  const auto predicted = t.predict(models::words_of(dev));
  const std::size_t n_bins = bins.upper.size() + 1;
  std::vector<double> right(n_bins + 1, 0), total(n_bins + 1, 0);
  for (std::size_t i = 0; i < dev.size(); ++i)
    for (std::size_t j = 0; j < dev[i].words.size(); ++j) {
      const bool ok = predicted[i][j] == t.tags().id(dev[i].tags[j]);
      for (std::size_t b : {bins.of(dev[i].words.size()), n_bins}) right[b] += ok, total[b] += 1;
    }
  std::vector<double> out;
  for (std::size_t b = 0; b <= n_bins; ++b) out.push_back(total[b] > 0 ? right[b] / total[b] : 0);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(
      "length_study: how well each scheme of positions tags sentences longer than any it trained "
      "on");
  std::string data_dir, svg, out_dir = "runs/length-study";
  std::size_t max_train_len = 20, epochs = 8, threads = 0;
  std::size_t conv_width = models::SentenceEncoderOptions{}.conv_width;
  std::uint64_t seed = 1;
  std::vector<std::size_t> bin_upper = {20, 40};
  std::vector<std::string> schemes = {"none",    "sinusoidal", "learned", "mlp",
                                      "fourier", "relative",   "rope",    "alibi",
                                      "t5",      "xl",         "cape",    "kernelized"};
  app.add_option("--data", data_dir, "folder with *train*.conllu and *dev*.conllu")->required();
  app.add_option("--max-train-len", max_train_len, "train on sentences of at most this many words");
  app.add_option("--epochs", epochs, "epochs per scheme (the same budget for each)");
  app.add_option("--schemes", schemes,
                 "--positions names, and kernelized (kernelized attention, its own bias)");
  app.add_option("--bins", bin_upper, "upper ends of the length bins (the last bin is open)");
  app.add_option("--conv-width", conv_width,
                 "the tagger's convolution over neighbouring words (0: none, so that the scheme "
                 "alone gives order)")
      ->capture_default_str();
  app.add_option("--seed", seed, "one seed for every scheme");
  app.add_option("--threads", threads, "threads (0: all cores)");
  app.add_option("--out-dir", out_dir, "where the models go, one per scheme");
  app.add_option("--svg", svg, "draw the table as grouped bars");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(threads);

  try {
    const auto all_train = models::read_conllu(examples::find_file(data_dir, "train", ".conllu"));
    const auto dev = models::read_conllu(examples::find_file(data_dir, "dev", ".conllu"));
    std::vector<models::TaggedSentence> train;
    for (const auto& s : all_train)
      if (s.words.size() <= max_train_len) train.push_back(s);
    const Bins bins{bin_upper};
    std::vector<std::size_t> dev_in_bin(bin_upper.size() + 1, 0);
    for (const auto& s : dev) dev_in_bin[bins.of(s.words.size())] += s.words.size();
    std::printf(
        "training on %zu of %zu sentences (at most %zu words), %zu epochs per scheme, convolution "
        "width %zu; "
        "dev tokens by length:",
        train.size(), all_train.size(), max_train_len, epochs, conv_width);
    for (std::size_t b = 0; b < dev_in_bin.size(); ++b)
      std::printf(" %s: %zu", bins.names()[b].c_str(), dev_in_bin[b]);
    std::printf("\n");
    fs::create_directories(out_dir);

    const auto train_words = models::words_of(train);
    const auto lengths = models::lengths_of(train_words);
    std::vector<std::string> all_tags;
    for (const auto& s : train) all_tags.insert(all_tags.end(), s.tags.begin(), s.tags.end());
    std::vector<Row> rows;
    for (const std::string& scheme : schemes) {
      // The tagger program's model (its defaults), one member, with this scheme.
      models::TaggerOptions options;
      options.encoder.conv_width = conv_width;
      if (scheme == "kernelized") {
        options.encoder.attention = nn::AttentionKind::kernelized;
        options.encoder.positions =
            nn::PositionScheme::relative;  // its bias b_r, clipped to relative_k
      } else {
        options.encoder.positions = enum_from_name<nn::PositionScheme>(scheme);
      }
      models::WordInput input{models::Vocab::build(train_words, 1, false),
                              models::SubwordOptions{}};
      models::TaggingPipeline t(std::move(input), models::Vocab::closed(all_tags), options, 1,
                                seed);
      nn::TrainOptions to{.epochs = epochs, .seed = seed, .out = out_dir + "/" + scheme + ".npz"};
      std::printf("\n== %s: %zu parameters\n", scheme.c_str(), t.net().parameter_count());
      nn::Task task{
          .model = &t.net(),
          .gen = &t.gen(),
          .batches = models::shuffled_batches(lengths, 1500, 256, seed),
          .loss =
              [&](const std::vector<std::size_t>& batch) {
                std::vector<const models::Words*> ws, ts;
                for (std::size_t i : batch)
                  ws.push_back(&train[i].words), ts.push_back(&train[i].tags);
                return t.loss(ws, ts, 0.1, 1.0);  // the tagger's word and rare-word dropout
              },
          .lengths = &lengths,
          .evaluate = [&] { return score_by_length(t, dev, bins).back(); },
          .save_model = [&](const std::string& path) { t.save(path, "length_study " + scheme); }};
      const auto start = std::chrono::steady_clock::now();
      {
        // Ctrl-C stops this scheme's training (after saving its checkpoint) and the study goes
        // on with the next scheme; outside training, Ctrl-C ends the study.
        const examples::StopOnSignals signals;
        task.stop = signals.flag();
        nn::train(task, to);
        task.stop = nullptr;
      }
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      rows.push_back({scheme, score_by_length(t, dev, bins), seconds});  // the last epoch's model
    }

    std::vector<std::string> columns = bins.names();
    columns.push_back("all");
    std::printf(
        "\nUPOS accuracy on the dev set by sentence length (words), trained on sentences of at "
        "most %zu words:\n\n"
        "| scheme |",
        max_train_len);
    for (const auto& c : columns) std::printf(" %s |", c.c_str());
    std::printf(" training time |\n|---|");
    for (std::size_t c = 0; c <= columns.size(); ++c) std::printf("---:|");
    std::printf("\n");
    for (const Row& r : rows) {
      std::printf("| %s |", r.scheme.c_str());
      for (double a : r.by_bin) std::printf(" %.2f%% |", 100 * a);
      std::printf(" %.0f s |\n", r.seconds);
    }
    if (!svg.empty()) {
      std::vector<std::string> groups;
      std::vector<std::vector<double>> values;
      for (const Row& r : rows) groups.push_back(r.scheme), values.push_back(r.by_bin);
      models::write_bars_svg(svg, groups, columns, values,
                             "UPOS accuracy by sentence length, trained on sentences of at most " +
                                 std::to_string(max_train_len) + " words" +
                                 (conv_width ? ", convolution width " + std::to_string(conv_width)
                                             : ", no convolution"),
                             0.5);
      std::printf("\ndrew %s\n", svg.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "length_study: %s\n", e.what());
    return 1;
  }
  return 0;
}
