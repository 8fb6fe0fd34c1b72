// Fuzz target: the checkpoint loader (.npz reader, parameter and optimizer state checks).  A file
// that fails to load must leave the model and the optimizer exactly as they were.
#include "autograd/runtime/generator.hpp"
#include "fuzz.hpp"
#include "nn/layer_norm.hpp"
#include "nn/linear.hpp"
#include "nn/training/checkpoint.hpp"
#include "nn/training/optim.hpp"

namespace {

struct Model : tg::nn::Module {
  explicit Model(tg::Generator& gen) : fc(3, 2, gen), norm(2) {
    register_module("fc", fc);
    register_module("norm", norm);
  }
  tg::nn::Linear fc;
  tg::nn::LayerNorm norm;
};

// Every parameter and optimizer state value, as bytes, to compare before and after.
std::string snapshot(const tg::nn::Module& model, const tg::nn::Optimizer& opt) {
  std::string bytes;
  const auto add = [&](const std::string& name, const tg::AnyArray& a) {
    bytes += name;
    std::visit(
        [&](const auto& v) {
          bytes.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(v.data()[0]));
        },
        a);
  };
  for (const auto& [name, p] : model.named_parameters()) add(name, p.impl()->value);
  for (const auto& [name, a] : opt.state()) add(name, a);
  return bytes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = fuzz::write_input(data, size, "input.npz");
  tg::Generator gen(1);
  Model model(gen);
  tg::nn::AdamW opt(model.named_parameters(), {});
  const std::string before = snapshot(model, opt);
  bool loaded = false;
  fuzz::expect_clean_errors([&] {
    tg::nn::load_checkpoint(path, model, opt, gen, nullptr);
    loaded = true;
  });
  if (!loaded && snapshot(model, opt) != before)
    throw std::logic_error("load_checkpoint: a failed load changed the model or the optimizer");
  return 0;
}

// The seed: a real checkpoint of this model (fuzz_replay --make-checkpoint-seed PATH).
void make_checkpoint_seed(const std::string& path) {
  tg::Generator gen(1);
  Model model(gen);
  tg::nn::AdamW opt(model.named_parameters(), {});
  tg::nn::save_checkpoint(path, model, opt, gen, 0);
}
