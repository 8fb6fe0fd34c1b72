#include "transformer.hpp"

#include "../autograd/ops.hpp"

namespace tg::nn {
namespace {

AttentionOptions self_attention(const TransformerOptions& o) {
  AttentionOptions a{.dropout = o.attention_dropout, .relative_skewed = o.relative_skewed};
  copy_self_attention(o, a);
  return a;
}

AttentionOptions cross_attention(const TransformerOptions& o) {
  return {.d_model = o.d_model, .heads = o.heads, .dropout = o.attention_dropout};
}

MlpOptions feed_forward(const TransformerOptions& o) {
  return {.widths = {o.d_model, o.ff, o.d_model}, .activation = o.activation, .dropout = o.dropout};
}

void check_options(const char* who, const TransformerOptions& o) {
  if (o.d_model == 0 || o.ff == 0 || o.layers == 0)
    fail(who, "d_model, ff and layers must be positive");
  if (!(o.dropout >= 0 && o.dropout < 1)) fail(who, "dropout must be in [0, 1)");
}

}  // namespace

EncoderLayer::EncoderLayer(const TransformerOptions& o, Generator& gen)
    : self_attn(self_attention(o), gen),
      ff(feed_forward(o), gen),
      norm1(o.d_model),
      norm2(o.d_model),
      drop(o.dropout, gen),
      pre_norm_(o.pre_norm) {
  check_options("EncoderLayer", o);
  register_module("self_attn", self_attn);
  register_module("ff", ff);
  register_module("norm1", norm1);
  register_module("norm2", norm2);
  register_module("drop", drop);
}

Tensor EncoderLayer::forward(const Tensor& x, const std::optional<Mask>& mask, Tensor* weights) {
  return forward(x, AttendOptions{.mask = mask, .weights = weights});
}

Tensor EncoderLayer::forward(const Tensor& x, const AttendOptions& call) {
  // Packed (real tokens only), dropout and the feed-forward block's dropout index the elements
  // as at the tokens' padded places.
  const TokenPacking* packing = call.packing ? &*call.packing : nullptr;
  if (pre_norm_) {
    Tensor h = x + drop.forward(self_attn.forward(norm1(x), call), packing);
    return h + drop.forward(ff.forward(norm2(h), packing), packing);
  }
  Tensor h = norm1(x + drop.forward(self_attn.forward(x, call), packing));
  return norm2(h + drop.forward(ff.forward(h, packing), packing));
}

template <class Layer>
LayerStack<Layer>::LayerStack(const char* who, const TransformerOptions& o, Generator& gen) {
  check_options(who, o);
  for (std::size_t i = 0; i < o.layers; ++i) {
    layers.push_back(std::make_unique<Layer>(o, gen));
    register_module(std::to_string(i), *layers.back());
  }
  if (o.pre_norm) {
    final_norm = std::make_unique<LayerNorm>(o.d_model);
    register_module("final_norm", *final_norm);
  }
}

template <class Layer>
template <class Kept, class Again, class Run>
Tensor LayerStack<Layer>::through_layers(Tensor h, const std::vector<Tensor>& extra,
                                         const std::shared_ptr<const Kept>& kept, Again again,
                                         Run run, std::vector<Tensor>* weights) {
  for (std::size_t i = 0; i < layers.size(); ++i) {
    Tensor w;
    if (kept) {
      std::vector<Tensor> inputs{h};
      inputs.insert(inputs.end(), extra.begin(), extra.end());
      const auto block = [layer = layers[i].get(), kept, again](const std::vector<Tensor>& in) {
        return again(*layer, in, *kept);
      };
      h = checkpoint(*layers[i], block, std::move(inputs));
    } else {
      h = run(i, h, weights ? &w : nullptr);
    }
    if (weights) weights->push_back(w);
  }
  return final_norm ? (*final_norm)(h) : h;
}

template class LayerStack<EncoderLayer>;
template class LayerStack<DecoderLayer>;

Encoder::Encoder(const TransformerOptions& o, Generator& gen) : LayerStack("Encoder", o, gen) {}

Tensor Encoder::forward(const Tensor& x, const std::optional<Mask>& mask,
                        std::vector<Tensor>* weights) {
  return forward(x, EncodeOptions{.mask = mask, .weights = weights});
}

Tensor Encoder::forward(const Tensor& x, const EncodeOptions& call) {
  std::vector<KvCache>* cache = call.cache;
  if (cache && !call.causal)
    throw std::invalid_argument(
        "Encoder: a cache decodes one position after another, which needs causal attention");
  if (cache && call.packing)
    throw std::invalid_argument(
        "Encoder: a cache decodes one position after another; a packed call cannot use one");
  if (cache && cache->size() != layers.size()) cache->resize(layers.size());
  // Checkpointed, a block keeps its input alone; what else it reads is kept by value, for the
  // recompute in backward (blocks whose weights a caller asks for, or that decode with a cache,
  // run as they are).
  const bool recompute = is_checkpointing() && !call.weights && !cache;
  const auto kept = recompute
                        ? std::make_shared<const AttendOptions>(AttendOptions{
                              .mask = call.mask, .causal = call.causal, .packing = call.packing})
                        : nullptr;
  // With a packing the layers and the final norm run on the real tokens, (N, C).
  Tensor h = through_layers(
      call.packing ? call.packing->pack(x) : x, {}, kept,
      [](EncoderLayer& layer, const std::vector<Tensor>& in, const AttendOptions& o) {
        return layer.forward(in[0], o);
      },
      [&](std::size_t i, const Tensor& h, Tensor* w) {
        return layers[i]->forward(h, {.mask = call.mask,
                                      .causal = call.causal,
                                      .cache = cache ? &(*cache)[i] : nullptr,
                                      .weights = w,
                                      .packing = call.packing});
      },
      call.weights);
  return call.packing ? call.packing->unpack(h) : h;
}

DecoderLayer::DecoderLayer(const TransformerOptions& o, Generator& gen)
    : self_attn(self_attention(o), gen),
      cross_attn(cross_attention(o), gen),
      ff(feed_forward(o), gen),
      norm1(o.d_model),
      norm2(o.d_model),
      norm3(o.d_model),
      drop(o.dropout, gen),
      pre_norm_(o.pre_norm) {
  check_options("DecoderLayer", o);
  register_module("self_attn", self_attn);
  register_module("cross_attn", cross_attn);
  register_module("ff", ff);
  register_module("norm1", norm1);
  register_module("norm2", norm2);
  register_module("norm3", norm3);
  register_module("drop", drop);
}

Tensor DecoderLayer::forward(const Tensor& y, const Tensor& memory,
                             const DecodeLayerOptions& call) {
  KvCache* self_cache = call.cache ? &call.cache->self : nullptr;
  KvCache* cross_cache = call.cache ? &call.cache->cross : nullptr;
  const auto self = [&](const Tensor& h) {
    return self_attn.forward(h,
                             {.mask = call.self_mask, .causal = call.causal, .cache = self_cache});
  };
  const auto cross = [&](const Tensor& h) {
    return cross_attn.forward_cross(
        h, memory, {.mask = call.memory_mask, .cache = cross_cache, .weights = call.cross_weights});
  };
  if (pre_norm_) {
    Tensor h = y + drop(self(norm1(y)));
    h = h + drop(cross(norm2(h)));
    return h + drop(ff(norm3(h)));
  }
  Tensor h = norm1(y + drop(self(y)));
  h = norm2(h + drop(cross(h)));
  return norm3(h + drop(ff(h)));
}

Decoder::Decoder(const TransformerOptions& o, Generator& gen) : LayerStack("Decoder", o, gen) {}

Tensor Decoder::forward(const Tensor& y, const Tensor& memory, const DecodeOptions& call) {
  DecoderCache* cache = call.cache;
  if (cache && !call.causal)
    throw std::invalid_argument(
        "Decoder: a cache decodes one position after another, which needs the causal mask");
  if (cache && cache->layers.size() != layers.size()) cache->layers.resize(layers.size());
  // Checkpointed (as in Encoder::forward): not with a cache, which each call extends.
  const bool recompute = is_checkpointing() && !cache && !call.cross_weights;
  const auto kept = recompute ? std::make_shared<const DecodeLayerOptions>(
                                    DecodeLayerOptions{.self_mask = call.self_mask,
                                                       .memory_mask = call.memory_mask,
                                                       .causal = call.causal})
                              : nullptr;
  return through_layers(
      y, {memory}, kept,
      [](DecoderLayer& layer, const std::vector<Tensor>& in, const DecodeLayerOptions& o) {
        return layer.forward(in[0], in[1], o);
      },
      [&](std::size_t i, const Tensor& h, Tensor* w) {
        return layers[i]->forward(h, memory,
                                  {.self_mask = call.self_mask,
                                   .memory_mask = call.memory_mask,
                                   .cache = cache ? &cache->layers[i] : nullptr,
                                   .cross_weights = w,
                                   .causal = call.causal});
      },
      call.cross_weights);
}

void DecoderCache::select(const std::vector<std::size_t>& rows, bool with_memory) {
  for (auto& layer : layers) {
    for (KvCache* c : {&layer.self, &layer.cross}) {
      if (!c->k.defined() || (c == &layer.cross && !with_memory)) continue;
      c->k = take_rows(c->k, rows);
      c->v = take_rows(c->v, rows);
    }
  }
}

}  // namespace tg::nn
