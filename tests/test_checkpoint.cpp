#define BOOST_TEST_MODULE checkpoint
#include <unistd.h>
#include <filesystem>
#include <fstream>

#include "testing.hpp"

using namespace tg;
using namespace tg::nn;
namespace fs = std::filesystem;

namespace {

struct Net : Module {
  Linear fc1;
  Dropout drop;
  Linear fc2;
  Net(Generator& gen, std::size_t hidden = 4, bool bias = true)
      : fc1(LinearOptions{3, hidden, bias}, gen),
        drop(0.3, gen),
        fc2(LinearOptions{hidden, 2, bias}, gen) {
    register_module("fc1", fc1);
    register_module("drop", drop);
    register_module("fc2", fc2);
  }
  Tensor forward(const Tensor& x) { return fc2(drop(tanh(fc1(x)))); }
};

std::vector<Array<float>> values_of(const Module& m) {
  std::vector<Array<float>> v;
  for (const Tensor& p : m.parameters()) v.push_back(p.data<float>());
  return v;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A net drawn from Generator(1) and saved to `path`, with the bytes of that file.
struct SavedNet {
  Generator gen{1};
  Net net{gen};
  std::string bytes;
  explicit SavedNet(const std::string& path) {
    save_parameters(net, path);
    bytes = read_bytes(path);
  }
};

// load_parameters must throw with `text` in the message and leave `m` as it was.
void check_load_fails(Net& m, const std::string& path, const std::string& text) {
  const auto before = values_of(m);
  BOOST_CHECK_EXCEPTION(
      load_parameters(m, path), std::runtime_error, [&](const std::runtime_error& e) {
        BOOST_TEST_MESSAGE(e.what());
        return testing::contains(e.what(), text) && testing::contains(e.what(), path);
      });
  const auto after = values_of(m);
  for (std::size_t i = 0; i < before.size(); ++i) BOOST_TEST((before[i] == after[i]));
}

}  // namespace

BOOST_AUTO_TEST_CASE(parameters_round_trip_bit_for_bit) {
  Generator g1(1), g2(2);
  Net a(g1), b(g2);
  save_parameters(a, "roundtrip.npz");
  load_parameters(b, "roundtrip.npz");
  const auto va = values_of(a), vb = values_of(b);
  for (std::size_t i = 0; i < va.size(); ++i) BOOST_TEST((va[i] == vb[i]));
  for (const auto& entry : fs::directory_iterator("."))  // no temporary files left behind
    BOOST_TEST(entry.path().string().find(".tmp.") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(mismatches_are_named_and_nothing_is_loaded) {
  Generator gen(1);
  Net saved(gen);
  save_parameters(saved, "saved.npz");
  Net wider(gen, 5);
  check_load_fails(wider, "saved.npz",
                   "'fc1.weight' has shape (3, 4) in the file, the model expects (3, 5)");
  Net no_bias(gen, 4, false);
  check_load_fails(no_bias, "saved.npz", "unexpected 'fc1.bias' (4)");
  struct Bigger : Net {
    Linear extra;
    Bigger(Generator& g) : Net(g), extra(2, 2, g) { register_module("extra", extra); }
  } bigger(gen);
  check_load_fails(bigger, "saved.npz", "missing 'extra.weight' (2, 2)");
}

BOOST_AUTO_TEST_CASE(truncated_and_corrupt_files_are_refused) {
  SavedNet good("good.npz");
  Net& m = good.net;
  const std::string& bytes = good.bytes;
  write_bytes("truncated.npz", bytes.substr(0, bytes.size() - 40));
  check_load_fails(m, "truncated.npz", "truncated or corrupt");
  for (std::size_t cut : {bytes.size() / 2, std::size_t(100), std::size_t(10), std::size_t(0)}) {
    write_bytes("cut.npz", bytes.substr(0, cut));
    check_load_fails(m, "cut.npz", "cut.npz: ");
  }
  std::string flipped = bytes;
  flipped[200] ^= 0x10;  // inside the first array's data
  write_bytes("flipped.npz", flipped);
  check_load_fails(m, "flipped.npz", "fails its CRC-32 check");
  write_bytes("garbage.npz", std::string(500, 'x'));
  check_load_fails(m, "garbage.npz", "no zip directory found");
  check_load_fails(m, "does-not-exist.npz", "cannot open");
}

BOOST_AUTO_TEST_CASE(a_failed_save_leaves_the_previous_file_intact) {
  SavedNet previous("previous.npz");
  // Fault injection: the temporary file cannot be created (a directory is in its way).
  const std::string tmp = "previous.npz.tmp." + std::to_string(::getpid());
  fs::create_directory(tmp);
  init::constant(previous.net.fc1.weight, 9.0);
  BOOST_CHECK_THROW(save_parameters(previous.net, "previous.npz"), std::runtime_error);
  fs::remove(tmp);
  BOOST_TEST((read_bytes("previous.npz") == previous.bytes));
}

BOOST_AUTO_TEST_CASE(reads_what_numpy_wrote_and_writes_what_numpy_reads) {
  Generator gen(1);
  struct One : Module {
    Linear fc;
    One(Generator& g) : fc(2, 3, g) { register_module("fc", fc); }
  } one(gen);
  load_parameters(one, TAPEGRAD_TEST_DATA "/numpy_written.npz");  // made by numpy.savez
  BOOST_TEST(one.fc.weight.data<float>()(1, 2) == 1.25f);
  BOOST_TEST(one.fc.bias.data<float>()(1) == -1.25f);  // float64 in the file, converted
  // For check_numpy_reads.py: fc1.weight = 0.5 * arange(12).reshape(3, 4).
  Net m(gen);
  for (std::size_t i = 0; i < 12; ++i) m.fc1.weight.data<float>().data()[i] = 0.5f * i;
  save_parameters(m, "for_numpy.npz");
}

BOOST_AUTO_TEST_CASE(resumed_training_matches_uninterrupted_training_exactly) {
  const Tensor x =
      from_vector({0.1, -0.4, 0.9, 1.0, 0.3, -0.7, -0.2, 0.5, 0.8, 0.6, -0.9, 0.2}, {4, 3});
  const Ids y = {0, 1, 1, 0};
  const WarmupCosine schedule(0.05, 3, 20);
  // Trains steps [from, to) and returns their losses.
  const auto train = [&](Net& net, AdamW& opt, std::size_t from, std::size_t to) {
    std::vector<double> losses;
    Tape tape;
    for (std::size_t t = from; t < to; ++t) {
      tape.clear();
      TapeGuard recording(tape);
      opt.set_lr(schedule.lr(t + 1));
      Tensor loss = cross_entropy(net.forward(x), y);  // dropout draws from the generator
      loss.backward();
      opt.step();
      opt.zero_grad();
      losses.push_back(loss.item());
    }
    return losses;
  };
  Generator gen(5);
  Net net(gen);
  AdamW opt(net.named_parameters(), {.lr = 0.05, .weight_decay = 0.01});
  const std::vector<double> straight = train(net, opt, 0, 20);

  Generator gen_a(5);
  Net first(gen_a);
  AdamW opt_a(first.named_parameters(), {.lr = 0.05, .weight_decay = 0.01});
  std::vector<double> resumed = train(first, opt_a, 0, 8);
  save_checkpoint("run.ckpt.npz", first, opt_a, gen_a, 8);

  Generator gen_b(999);  // a different seed: everything must come from the checkpoint
  Net second(gen_b);
  AdamW opt_b(second.named_parameters(), {.lr = 0.05, .weight_decay = 0.01});
  const std::size_t step = load_checkpoint("run.ckpt.npz", second, opt_b, gen_b);
  BOOST_TEST(step == 8u);
  BOOST_TEST(opt_b.steps() == 8u);
  const std::vector<double> rest = train(second, opt_b, step, 20);
  resumed.insert(resumed.end(), rest.begin(), rest.end());
  BOOST_TEST(resumed == straight, boost::test_tools::per_element());  // bit for bit

  // A checkpoint for another optimizer, or a plain parameter file, is refused whole.
  Sgd sgd(second.named_parameters(), {});
  BOOST_CHECK_EXCEPTION(load_checkpoint("run.ckpt.npz", second, sgd, gen_b), std::runtime_error,
                        [](const std::runtime_error& e) {
                          return testing::contains(
                              e.what(), "the checkpoint's optimizer is adamw, this run uses sgd");
                        });
  save_parameters(second, "plain.npz");
  BOOST_CHECK_EXCEPTION(load_checkpoint("plain.npz", second, opt_b, gen_b), std::runtime_error,
                        [](const std::runtime_error& e) {
                          return testing::contains(e.what(), "not a tapegrad checkpoint");
                        });
}
