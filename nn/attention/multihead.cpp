#include "multihead.hpp"

#include <cmath>
#include <string>

#include "../../autograd/broadcast.hpp"
#include "../../autograd/ops.hpp"
#include "../init.hpp"
#include "../positions/in_attention.hpp"

namespace tg::nn {

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const std::optional<Mask>& mask, Tensor* weights) {
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4 || k.shape() != v.shape() ||
      q.shape()[3] != k.shape()[3] || q.shape()[0] != k.shape()[0] || q.shape()[1] != k.shape()[1])
    fail("scaled_dot_product_attention", "needs q (B, H, T, D), k and v (B, H, S, D): got q " +
                                             shape_str(q.shape()) + ", k " + shape_str(k.shape()) +
                                             ", v " + shape_str(v.shape()));
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.shape()[3]));
  Tensor logits = matmul(q, transpose(k)) * scale;  // (B, H, T, S)
  Tensor attn = mask ? masked_softmax(logits, *mask) : softmax(logits);
  if (weights) *weights = attn;
  return matmul(attn, v);
}

namespace {

// What self-attention adds for the scheme of `o` (see AttentionOptions::positions): the
// scheme's kind if it lives inside attention; none for none and the absolute schemes, which are
// the input's business.  Kernelized attention's relative positions are its bias b_r, so with it
// nothing else is added, and a scheme that would change its logits is refused.
PositionKind inside_attention(const AttentionOptions& o) {
  const PositionKind kind = position_kind(o.positions);
  if (o.kind == AttentionKind::kernelized) {
    if (kind != PositionKind::none && kind != PositionKind::absolute && kind != PositionKind::shaw)
      fail("MultiheadAttention",
           std::string("kernelized attention has its own relative positions (the bias b_r over "
                       "offsets clipped to relative_k, which \"relative\" names): it takes none, "
                       "relative or an absolute scheme, not ") +
               enum_name(o.positions));
    return PositionKind::none;
  }
  return kind == PositionKind::absolute ? PositionKind::none : kind;
}

}  // namespace

MultiheadAttention::MultiheadAttention(const AttentionOptions& options, Generator& gen)
    : in_proj(LinearOptions{options.d_model, 3 * options.d_model, options.bias}, gen),
      out_proj(LinearOptions{options.d_model, options.d_model, options.bias}, gen),
      options_(options),
      head_dim_(options.heads == 0 ? 0 : options.d_model / options.heads),
      gen_(&gen),
      inside_(inside_attention(options)) {
  if (options.heads == 0 || options.d_model % options.heads != 0)
    fail("MultiheadAttention", "d_model " + std::to_string(options.d_model) +
                                   " must be a positive multiple of heads " +
                                   std::to_string(options.heads));
  if (!(options.dropout >= 0 && options.dropout < 1))
    fail("MultiheadAttention", "dropout must be in [0, 1), got " + std::to_string(options.dropout));
  register_module("in_proj", in_proj);
  register_module("out_proj", out_proj);
  draws_from(gen);  // attention dropout
  if (inside_ == PositionKind::shaw) {
    if (options.relative_k == 0)
      fail("MultiheadAttention",
           "relative positions need relative_k > 0 (offsets are clipped to [-k, k])");
    const std::size_t rows = 2 * options.relative_k + 1;
    rel_key = register_parameter("rel_key", zeros({rows, head_dim_}));
    rel_value = register_parameter("rel_value", zeros({rows, head_dim_}));
    init::xavier_uniform(rel_key, gen);
    init::xavier_uniform(rel_value, gen);
  }
  if (inside_ == PositionKind::rotation && head_dim_ % 2 != 0)
    fail("MultiheadAttention",
         "rope turns pairs of dims: the head dim " + std::to_string(head_dim_) + " must be even");
  if (inside_ == PositionKind::xl) {
    xl_proj = std::make_unique<Linear>(LinearOptions{options.d_model, options.d_model, false}, gen);
    register_module("xl_proj", *xl_proj);
    xl_u = register_parameter("xl_u", zeros({options.heads, head_dim_}));
    xl_v = register_parameter("xl_v", zeros({options.heads, head_dim_}));
  }
  if (options.kind == AttentionKind::kernelized) {
    if (options.kernel_features == 0)
      fail("MultiheadAttention", "kernelized attention needs kernel_features > 0");
    kernel_omega = register_buffer(
        "kernel_omega",
        Tensor(orthogonal_gaussian_features(options.kernel_features, head_dim_, gen))
            .to(Dtype::f32));
    // b_r = 0 at the start: c_r = 1, plain Performer attention until the offsets are learned.
    kernel_bias =
        register_parameter("kernel_bias", zeros({2 * options.relative_k + 1, options.heads}));
  }
  if (inside_ == PositionKind::bias && options.positions == PositionScheme::t5) {
    if (options.t5_buckets < 4 || options.t5_max_distance <= options.t5_buckets / 4)
      fail("MultiheadAttention",
           "t5 needs at least 4 buckets and a max distance above a quarter of them");
    t5_bias = register_parameter("t5_bias",
                                 zeros({options.t5_buckets, options.heads}));  // T5 starts at 0
  }
}

void MultiheadAttention::check_input(const char* what, const Tensor& x) const {
  if (!x.defined() || x.dim() != 3 || x.shape()[2] != options_.d_model)
    fail("MultiheadAttention",
         std::string(what) + " must be (B, T, C) with C = " + std::to_string(options_.d_model) +
             ", got " + (x.defined() ? shape_str(x.shape()) : "undefined"));
  check_input_dtype("MultiheadAttention", x);
}

Tensor MultiheadAttention::split_heads(const Tensor& x) const {
  const auto B = static_cast<std::int64_t>(x.shape()[0]),
             T = static_cast<std::int64_t>(x.shape()[1]);
  return permute(reshape(x, {B, T, static_cast<std::int64_t>(options_.heads),
                             static_cast<std::int64_t>(head_dim_)}),
                 {0, 2, 1, 3});
}

Tensor MultiheadAttention::merge_heads(const Tensor& x) const {
  const auto B = static_cast<std::int64_t>(x.shape()[0]),
             T = static_cast<std::int64_t>(x.shape()[2]);
  return reshape(permute(x, {0, 2, 1, 3}), {B, T, static_cast<std::int64_t>(options_.d_model)});
}

AttentionArgs MultiheadAttention::fused_args(const std::optional<Mask>& mask, bool causal) {
  const bool relative = inside_ == PositionKind::shaw;
  return {.scale = 1.0 / std::sqrt(static_cast<double>(head_dim_)),
          .mask = mask ? &*mask : nullptr,
          .causal = causal,
          .rel_key = relative ? rel_key : Tensor(),
          .rel_value = relative ? rel_value : Tensor(),
          .relative_k = relative ? options_.relative_k : 0,
          .dropout = options_.dropout,
          .gen = gen_,
          .training = is_training()};
}

// q: (B, H, T, D), k, v: (B, H, S, D), bias (H, T, S) or none -> (B, H, T, D)
Tensor MultiheadAttention::attend(const Tensor& q, const Tensor& k, const Tensor& v,
                                  const std::optional<Mask>& mask, bool causal, Tensor* weights,
                                  const Tensor& bias) {
  const std::size_t T = q.shape()[2], S = k.shape()[2];
  const Shape logits_shape{q.shape()[0], options_.heads, T, S};
  if (mask && !broadcasts_to(mask->shape(), logits_shape))
    fail("MultiheadAttention",
         "the mask " + shape_str(mask->shape()) +
             " does not broadcast to the logits (B, H, T, S) = " + shape_str(logits_shape));
  const bool xl = inside_ == PositionKind::xl;
  if (options_.fused && !weights && !bias.defined() && !xl)
    return fused_attention(q, k, v, fused_args(mask, causal));
  // The composed reference, op by op.
  std::optional<Mask> m = mask;
  if (causal) m = m ? mask_and(*m, causal_mask(T, S)) : causal_mask(T, S);
  const bool relative = inside_ == PositionKind::shaw;
  Tensor logits = matmul(q, transpose(k));  // (B, H, T, S)
  if (relative) logits = logits + relative_logits(q, S, causal);
  if (xl) logits = logits + xl_logits(q, k, causal);
  logits = logits * (1.0 / std::sqrt(static_cast<double>(head_dim_)));
  if (bias.defined()) logits = logits + bias;  // (B, H, T, S) + (H, T, S)
  Tensor attn = m ? masked_softmax(logits, *m) : softmax(logits);
  if (weights) *weights = attn;
  attn = dropout(attn, options_.dropout, *gen_, is_training());
  Tensor out = matmul(attn, v);
  if (relative) out = out + relative_values(attn, causal);
  return out;
}

Tensor MultiheadAttention::forward(const Tensor& x, const AttendOptions& call) {
  if (!call.packing) {
    check_input("x", x);
    return out_proj(self_attend(in_proj(x), call));
  }
  // Real tokens only: the projections on (N, C); attention too when fused, each sentence's
  // tokens a block of their own, otherwise on the padded layout.
  const TokenPacking& packing = *call.packing;
  if (!x.defined() || x.dim() != 2 || x.shape()[0] != packing.tokens() ||
      x.shape()[1] != options_.d_model)
    fail("MultiheadAttention",
         "packed x must be (N, C) with N = " + std::to_string(packing.tokens()) +
             " real tokens and C = " + std::to_string(options_.d_model) + ", got " +
             (x.defined() ? shape_str(x.shape()) : "undefined"));
  if (call.cache)
    fail("MultiheadAttention", "a cache decodes position after position; packed x cannot use one");
  if (options_.kind == AttentionKind::kernelized)
    fail("MultiheadAttention",
         "kernelized attention cannot skip padding: its features' stabiliser is a maximum over "
         "every key, padding included, so packed and padded steps would differ");
  check_input_dtype("MultiheadAttention", x);
  if (fuses(call) && packing.real_tokens_first())  // attention itself on the real tokens too
    return out_proj(fused_token_attention(in_proj(x), options_.heads, packing.packed(),
                                          fused_args(call.mask, call.causal)));
  AttendOptions padded = call;
  padded.packing.reset();
  // Whatever else it masks, attention never sees a place the packing left empty.
  padded.mask = call.mask ? mask_and(*call.mask, packing.key_padding()) : packing.key_padding();
  return out_proj(packing.pack(self_attend(packing.unpack(in_proj(x)), padded)));
}

// Whether self-attention runs as one fused op: what its kernel knows (no positions inside, or
// Shaw's), with no cache and no weights to return.
bool MultiheadAttention::fuses(const AttendOptions& call) const {
  const bool shaw_or_none = inside_ == PositionKind::none || inside_ == PositionKind::shaw;
  return options_.fused && options_.kind != AttentionKind::kernelized && shaw_or_none &&
         !call.cache && !call.weights;
}

// qkv: (B, T, 3C), the in-projection of x -> (B, T, C), before the out-projection.
Tensor MultiheadAttention::self_attend(const Tensor& qkv, const AttendOptions& call) {
  const std::optional<Mask>& mask = call.mask;
  const bool causal = call.causal;
  KvCache* cache = call.cache;
  Tensor* weights = call.weights;
  const auto C = static_cast<std::int64_t>(options_.d_model);
  const bool kernelized = options_.kind == AttentionKind::kernelized;
  if (fuses(call))  // heads read in place from qkv
    return fused_self_attention(qkv, options_.heads, fused_args(mask, causal));
  Tensor q = split_heads(slice(qkv, -1, 0, C));
  Tensor k = split_heads(slice(qkv, -1, C, 2 * C));
  Tensor v = split_heads(slice(qkv, -1, 2 * C, 3 * C));
  const std::size_t offset =
      cache ? cache->length() : 0;          // the new positions follow the cached ones
  if (inside_ == PositionKind::rotation) {  // keys are cached rotated, at their own positions
    q = rope_rotate(q, offset, options_.rope_base);
    k = rope_rotate(k, offset, options_.rope_base);
  }
  if (cache) {
    if (cache->k.defined()) {
      k = concat({cache->k, k}, 2);
      v = concat({cache->v, v}, 2);
    }
    cache->k = k;
    cache->v = v;
  }
  if (kernelized) {
    const Tensor z = kernelized_attention(
        favor_features(q, kernel_omega, true), favor_features(k, kernel_omega, false), v,
        kernel_coefficients(k.shape()[2]), mask, causal, false, weights);
    return merge_heads(z);
  }
  const Tensor bias = position_bias(q.shape()[2], k.shape()[2], causal, q.dtype());
  return merge_heads(attend(q, k, v, mask, causal, weights, bias));
}

Tensor MultiheadAttention::forward_cross(const Tensor& x, const Tensor& memory,
                                         const AttendOptions& call) {
  check_input("x", x);
  check_input("memory", memory);
  if (call.causal)
    fail("MultiheadAttention", "cross-attention cannot be causal: x and memory share no positions");
  KvCache* memory_cache = call.cache;
  if (inside_ == PositionKind::shaw)
    fail("MultiheadAttention",
         "relative positions are for self-attention; cross-attention "
         "has no shared positions between queries and keys");
  if (x.shape()[0] != memory.shape()[0])
    fail("MultiheadAttention", "x " + shape_str(x.shape()) + " and memory " +
                                   shape_str(memory.shape()) + " have different batch sizes");
  const auto C = static_cast<std::int64_t>(options_.d_model);
  // q from x, k and v from memory: the in-projection's three blocks of columns.
  const auto bias_part = [&](std::int64_t from, std::int64_t to) {
    return in_proj.bias.defined() ? slice(in_proj.bias, 0, from, to) : Tensor();
  };
  Tensor q =
      split_heads(linear(x, slice(in_proj.weight, 1, 0, C), bias_part(0, C)));  // (B, H, T, D)
  Tensor k, v;
  if (memory_cache && memory_cache->k.defined()) {
    k = memory_cache->k;
    v = memory_cache->v;
  } else {
    Tensor kv =
        linear(memory, slice(in_proj.weight, 1, C, 3 * C), bias_part(C, 3 * C));  // (B, S, 2C)
    k = split_heads(slice(kv, -1, 0, C));
    v = split_heads(slice(kv, -1, C, 2 * C));
    if (memory_cache) *memory_cache = {k, v};
  }
  return out_proj(merge_heads(attend(q, k, v, call.mask, false, call.weights)));
}

}  // namespace tg::nn
