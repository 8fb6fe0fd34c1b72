"""PyTorch side of the training-step benchmark: tapegrad's five workloads, built in PyTorch.

bench/tapegrad_bench.cpp times one training step of tapegrad's own models (models/, nn/); this
script builds the same models in PyTorch -- the same layers in the same order, the same shapes,
initialised the same way -- times the same step on the same kind of batch, and prints the same
JSON line, so that bench/compare.py can put the two side by side.  The workloads are those of
docs/speed.md:

    workload     model                 vocab          C    H  ff    layers  B x T    positions
    tiny         Tagger                100, 8 tags    32   2  64    1       4 x 8    Shaw, k = 4
    tagger       Tagger                20000, 18 tags 128  4  512   2       32 x 48  Shaw, k = 16
    sentiment    Classifier            20000, 2       128  4  512   2       64 x 64  Fourier features
    translation  Translator (enc-dec)  8000 / 8000    256  8  1024  3 + 3   64 x 32  MLP of position
    lm           LanguageModel (GPT)   65 characters  128  4  512   4       12 x 64  learned table

Usage (Debian: apt-get install python3-torch, then run with /usr/bin/python3):

    /usr/bin/python3 bench/torch_reference.py --workload tagger --threads 1 --steps 10 --warmup 3

One step is: zero the gradients, forward, loss, backward, AdamW update, on a fixed random batch.
The last line printed is one JSON object:

    {"system": "pytorch 1.13.0a0", "workload": "tagger", "threads": 1, "ms_per_step": ...,
     "tokens_per_s": ..., "params": 2963346, "loss": ..., "peak_rss_mb": ...,
     "blas_core": "Haswell", "blas_threads": 1}

ms_per_step is the median of --steps timed steps after --warmup untimed ones; tokens_per_s
counts non-padding tokens (source + target for translation); params counts trainable scalars
and must equal tapegrad's figure (12,360 / 2,963,346 / 2,981,922 / 11,716,160 / 809,856): that is the
check that both sides built the same model.  When PyTorch's BLAS is OpenBLAS (as on Debian),
blas_core is the kernel family it picked (OPENBLAS_CORETYPE overrides the pick) and
blas_threads its thread count: --threads, like tapegrad's, covers the BLAS too.

Shapes in the comments: B batch, T time, S source time, C channels (d_model), H heads,
D head dim (C / H), V vocabulary or classes.
"""

import argparse
import ctypes
import json
import math
import resource
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

PAD = 0  # the padding id on every side; real ids are 1 .. vocab - 1


# ---- initialisation, as tapegrad's nn/ does it --------------------------------------------
# The step time does not depend on the initial values, but the first losses do: initialising
# like tapegrad keeps the two sides' printed losses comparable.

def linear(n_in, n_out, bias=True):
    """nn.Linear initialised like tapegrad's Linear: Xavier-uniform weight, zero bias."""
    layer = nn.Linear(n_in, n_out, bias=bias)
    nn.init.xavier_uniform_(layer.weight)
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


def embedding(vocab, dim):
    """Word vectors N(0, 1/C), padding row zero and frozen (no gradient), as tapegrad's Embedding."""
    table = nn.Embedding(vocab, dim, padding_idx=PAD)
    nn.init.normal_(table.weight, 0.0, 1.0 / math.sqrt(dim))
    with torch.no_grad():
        table.weight[PAD].zero_()
    return table


def multihead_attention(dim, heads, dropout):
    """PyTorch's own attention: in-projection (3C, C) + 3C bias, out-projection (C, C) + C.

    PyTorch already initialises the in-projection like tapegrad (Xavier-uniform, zero bias);
    only the out-projection needs it too.
    """
    attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
    nn.init.xavier_uniform_(attn.out_proj.weight)
    nn.init.zeros_(attn.out_proj.bias)
    return attn


# ---- attention with Shaw et al. (2018) relative positions ----------------------------------

class RelativeSelfAttention(nn.Module):
    """Self-attention with learned embeddings of the offset j - i, as tapegrad's MultiheadAttention
    with positions relative (nn/attention/multihead.cpp).  PyTorch has no such layer, so it is
    written here.

        logits[b, h, i, j] = (q_i . k_j + q_i . a_K[r(j - i)]) / sqrt(D)
        out[b, h, i]       = sum_j attn[b, h, i, j] (v_j + a_V[r(j - i)])

    where r(d) = clip(d, -k, k) + k picks a row of the two (2k + 1, D) tables a_K and a_V, which
    all heads share.  Dropout acts on attn, before both products, as in tapegrad.
    """

    def __init__(self, dim, heads, max_offset, dropout):
        super().__init__()
        self.heads, self.head_dim, self.max_offset = heads, dim // heads, max_offset
        self.in_proj = linear(dim, 3 * dim)  # x -> [q | k | v]
        self.out_proj = linear(dim, dim)
        self.rel_key = nn.Parameter(torch.empty(2 * max_offset + 1, self.head_dim))    # a_K
        self.rel_value = nn.Parameter(torch.empty(2 * max_offset + 1, self.head_dim))  # a_V
        nn.init.xavier_uniform_(self.rel_key)
        nn.init.xavier_uniform_(self.rel_value)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, key_padding):
        """x: (B, T, C), key_padding: (B, T) True at padding -> (B, T, C)"""
        B, T, C = x.shape
        H, D = self.heads, self.head_dim
        q, k, v = self.in_proj(x).view(B, T, 3, H, D).permute(2, 0, 3, 1, 4)  # each (B, H, T, D)

        # The table row of every (query i, key j) pair, and the embeddings it selects.
        position = torch.arange(T)
        rows = (position[None, :] - position[:, None]).clamp(-self.max_offset, self.max_offset)
        rows = rows + self.max_offset                                          # (T, T)
        a_key, a_value = self.rel_key[rows], self.rel_value[rows]              # (T, T, D) each

        logits = q @ k.transpose(-2, -1)                                       # (B, H, T, T)
        logits = logits + torch.einsum("bhid,ijd->bhij", q, a_key)
        logits = logits / math.sqrt(D)
        logits = logits.masked_fill(key_padding[:, None, None, :], float("-inf"))
        attn = self.drop(logits.softmax(dim=-1))                               # (B, H, T, T)

        out = attn @ v + torch.einsum("bhij,ijd->bhid", attn, a_value)         # (B, H, T, D)
        return self.out_proj(out.transpose(1, 2).reshape(B, T, C))


# ---- transformer blocks (pre-LayerNorm), as nn/transformer.cpp --------------------------------
# Each sublayer f is x = x + dropout(f(norm(x))); each stack ends with a LayerNorm.

def feed_forward(dim, width, dropout):
    """x: (..., C) -> (..., C): Linear, GELU, dropout, Linear (tapegrad's Mlp({C, ff, C}))."""
    return nn.Sequential(linear(dim, width), nn.GELU(), nn.Dropout(dropout), linear(width, dim))


class EncoderLayer(nn.Module):
    """Self-attention, then feed-forward.  max_offset > 0: Shaw relative attention, else
    PyTorch's nn.MultiheadAttention (positions then come from outside)."""

    def __init__(self, dim, heads, width, dropout, max_offset=0):
        super().__init__()
        self.relative = max_offset > 0
        self.self_attn = (RelativeSelfAttention(dim, heads, max_offset, dropout) if self.relative
                          else multihead_attention(dim, heads, dropout))
        self.ff = feed_forward(dim, width, dropout)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def attend(self, h, key_padding):
        if self.relative:
            return self.self_attn(h, key_padding)
        return self.self_attn(h, h, h, key_padding_mask=key_padding, need_weights=False)[0]

    def forward(self, x, key_padding):
        """x: (B, T, C), key_padding: (B, T) True at padding -> (B, T, C)"""
        x = x + self.drop(self.attend(self.norm1(x), key_padding))
        return x + self.drop(self.ff(self.norm2(x)))


class Encoder(nn.Module):
    def __init__(self, dim, heads, width, layers, dropout, max_offset=0):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(dim, heads, width, dropout, max_offset)
                                    for _ in range(layers))
        self.final_norm = nn.LayerNorm(dim)

    def forward(self, x, key_padding):
        """x: (B, T, C) -> (B, T, C)"""
        for layer in self.layers:
            x = layer(x, key_padding)
        return self.final_norm(x)


class DecoderLayer(nn.Module):
    """Causal self-attention, cross-attention over the encoder's output, feed-forward."""

    def __init__(self, dim, heads, width, dropout):
        super().__init__()
        self.self_attn = multihead_attention(dim, heads, dropout)
        self.cross_attn = multihead_attention(dim, heads, dropout)
        self.ff = feed_forward(dim, width, dropout)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, y, memory, causal, target_padding, source_padding):
        """y: (B, T, C), memory: (B, S, C), causal: (T, T) True where a query may not look
        -> (B, T, C)"""
        h = self.norm1(y)
        y = y + self.drop(self.self_attn(h, h, h, attn_mask=causal, key_padding_mask=target_padding,
                                         need_weights=False)[0])
        h = self.norm2(y)
        y = y + self.drop(self.cross_attn(h, memory, memory, key_padding_mask=source_padding,
                                          need_weights=False)[0])
        return y + self.drop(self.ff(self.norm3(y)))


class Decoder(nn.Module):
    def __init__(self, dim, heads, width, layers, dropout):
        super().__init__()
        self.layers = nn.ModuleList(DecoderLayer(dim, heads, width, dropout) for _ in range(layers))
        self.final_norm = nn.LayerNorm(dim)

    def forward(self, y, memory, target_padding, source_padding):
        """y: (B, T, C), memory: (B, S, C) -> (B, T, C)"""
        T = y.shape[1]
        causal = torch.ones(T, T, dtype=torch.bool).triu(1)  # query i must not see keys j > i
        for layer in self.layers:
            y = layer(y, memory, causal, target_padding, source_padding)
        return self.final_norm(y)


# ---- absolute positions, as nn/positions/absolute.cpp ------------------------------------

class FourierPositions(nn.Module):
    """Learnable Fourier features (Li et al. 2021) of the position p = 0 .. T-1:
    r(p) = [cos(p W_r^T), sin(p W_r^T)] / sqrt(F) with W_r (F/2, 1) ~ N(0, gamma^-2),
    then Linear(F, hidden), GELU, Linear(hidden, C)."""

    def __init__(self, dim, features=64, hidden=128, gamma=1.0):
        super().__init__()
        self.features = features
        self.wr = linear(1, features // 2, bias=False)
        nn.init.normal_(self.wr.weight, 0.0, 1.0 / gamma)
        self.fc1, self.fc2 = linear(features, hidden), linear(hidden, dim)

    def forward(self, T):
        """-> (T, C)"""
        proj = self.wr(torch.arange(T, dtype=torch.float32)[:, None])             # (T, F/2)
        r = torch.cat([proj.cos(), proj.sin()], dim=-1) / math.sqrt(self.features)  # (T, F)
        return self.fc2(F.gelu(self.fc1(r)))


class MlpPositions(nn.Module):
    """A small MLP of the scaled position: Linear(1, hidden), GELU, Linear(hidden, C) of p / scale."""

    def __init__(self, dim, hidden=64, scale=512.0):
        super().__init__()
        self.scale = scale
        self.fc1, self.fc2 = linear(1, hidden), linear(hidden, dim)

    def forward(self, T):
        """-> (T, C)"""
        p = torch.arange(T, dtype=torch.float32)[:, None] / self.scale  # (T, 1)
        return self.fc2(F.gelu(self.fc1(p)))


# ---- the three models, as models/ ---------------------------------------------------------
# Each scales its word vectors by sqrt(C), adds the positions (if absolute), applies dropout,
# and runs the encoder (and decoder).  Padding is id 0 everywhere.

class Tagger(nn.Module):
    """A label for every token (models/tagger.cpp).  ids: (B, T) -> logits (B, T, tags)"""

    def __init__(self, vocab, tags, dim, heads, width, layers, max_offset, dropout=0.1):
        super().__init__()
        self.dim = dim
        self.embed = embedding(vocab, dim)
        self.encoder = Encoder(dim, heads, width, layers, dropout, max_offset)
        self.head = linear(dim, tags)
        self.drop = nn.Dropout(dropout)

    def forward(self, ids):
        x = self.drop(self.embed(ids) * math.sqrt(self.dim))  # (B, T, C); positions are relative
        return self.head(self.encoder(x, ids == PAD))

    def loss(self, ids, tags):
        """Mean cross-entropy over real tokens (tags: (B, T), -100 at padding)."""
        logits = self(ids)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tags.reshape(-1), ignore_index=-100)


class Classifier(nn.Module):
    """One label per sequence (models/classifier.cpp): the encoder's outputs are averaged over
    the real tokens, then classified.  ids: (B, T) -> logits (B, classes)"""

    def __init__(self, vocab, classes, dim=128, heads=4, width=512, layers=2, dropout=0.1):
        super().__init__()
        self.dim = dim
        self.embed = embedding(vocab, dim)
        self.positions = FourierPositions(dim)
        self.encoder = Encoder(dim, heads, width, layers, dropout)
        self.head = linear(dim, classes)
        self.drop = nn.Dropout(dropout)

    def forward(self, ids):
        padding = ids == PAD                                                 # (B, T)
        x = self.embed(ids) * math.sqrt(self.dim) + self.positions(ids.shape[1])
        h = self.encoder(self.drop(x), padding)                              # (B, T, C)
        keep = (~padding).unsqueeze(-1).to(h.dtype)                          # (B, T, 1)
        count = keep.sum(dim=1).clamp(min=1)       # (B, 1); an all-padding row pools to 0
        return self.head((h * keep).sum(dim=1) / count)                      # (B, C) -> (B, V)

    def loss(self, ids, labels):
        return F.cross_entropy(self(ids), labels)


class Translator(nn.Module):
    """Encoder-decoder (models/translator.cpp), trained with teacher forcing.
    src: (B, S), tgt_in: (B, T) -> logits (B, T, tgt_vocab)"""

    def __init__(self, src_vocab, tgt_vocab, dim=256, heads=8, width=1024, layers=3, dropout=0.1,
                 label_smoothing=0.1):
        super().__init__()
        self.dim, self.label_smoothing = dim, label_smoothing
        self.src_embed, self.tgt_embed = embedding(src_vocab, dim), embedding(tgt_vocab, dim)
        self.src_positions, self.tgt_positions = MlpPositions(dim), MlpPositions(dim)
        self.encoder = Encoder(dim, heads, width, layers, dropout)
        self.decoder = Decoder(dim, heads, width, layers, dropout)
        self.head = linear(dim, tgt_vocab)
        self.drop = nn.Dropout(dropout)

    def forward(self, src, tgt_in):
        source_padding, target_padding = src == PAD, tgt_in == PAD
        x = self.src_embed(src) * math.sqrt(self.dim) + self.src_positions(src.shape[1])
        memory = self.encoder(self.drop(x), source_padding)                       # (B, S, C)
        y = self.tgt_embed(tgt_in) * math.sqrt(self.dim) + self.tgt_positions(tgt_in.shape[1])
        return self.head(self.decoder(self.drop(y), memory, target_padding, source_padding))

    def loss(self, src, tgt_in, tgt_out):
        """Label-smoothed cross-entropy over the real target tokens (tgt_out 0 = padding)."""
        logits = self(src, tgt_in)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1),
                               ignore_index=PAD, label_smoothing=self.label_smoothing)


class CausalSelfAttention(nn.Module):
    """Masked self-attention (tapegrad's MultiheadAttention with causal = true): one fused
    projection to [q | k | v], attention over keys j <= i, the output projection.  Written out
    because this PyTorch (1.13) has no scaled_dot_product_attention."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.in_proj = linear(dim, 3 * dim)  # x -> [q | k | v]
        self.out_proj = linear(dim, dim)

    def forward(self, x):
        """x: (B, T, C) -> (B, T, C)"""
        B, T, C = x.shape
        q, k, v = self.in_proj(x).view(B, T, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        logits = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)            # (B, H, T, T)
        future = torch.ones(T, T, dtype=torch.bool).triu(1)                    # j > i
        attn = logits.masked_fill(future, float("-inf")).softmax(dim=-1)
        return self.out_proj((attn @ v).transpose(1, 2).reshape(B, T, C))      # (B, H, T, D) -> ..


class GptLayer(nn.Module):
    """Pre-LayerNorm: x = x + attn(norm1(x)), then x = x + ff(norm2(x)).  No dropout (the
    language model's default is 0)."""

    def __init__(self, dim, heads, width):
        super().__init__()
        self.attn, self.ff = CausalSelfAttention(dim, heads), feed_forward(dim, width, 0.0)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.ff(self.norm2(x))


class LanguageModel(nn.Module):
    """Decoder-only GPT (models/language_model.cpp): token embedding times sqrt(C) plus a learned
    table of positions, causal pre-LayerNorm layers, a final LayerNorm, and the output layer tied
    to the embedding (logits = h E^T, no bias).  ids: (B, T) -> logits (B, T, V)"""

    def __init__(self, vocab=65, dim=128, heads=4, width=512, layers=4, max_len=64):
        super().__init__()
        self.dim = dim
        self.embed = nn.Embedding(vocab, dim)                     # no padding row: every id is text
        nn.init.normal_(self.embed.weight, 0.0, 1.0 / math.sqrt(dim))
        self.positions = nn.Parameter(torch.empty(max_len, dim))  # tapegrad's LearnedPositions
        nn.init.normal_(self.positions, 0.0, 0.02)
        self.layers = nn.ModuleList(GptLayer(dim, heads, width) for _ in range(layers))
        self.final_norm = nn.LayerNorm(dim)

    def forward(self, ids):
        T = ids.shape[1]
        x = self.embed(ids) * math.sqrt(self.dim) + self.positions[:T]  # (B, T, C)
        for layer in self.layers:
            x = layer(x)
        return self.final_norm(x) @ self.embed.weight.t()              # (B, T, C) -> (B, T, V)

    def loss(self, inputs, targets):
        """Mean cross-entropy of targets[b, t] given inputs[b, 0..t]."""
        logits = self(inputs)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


# ---- the workloads: model, fixed batch, loss ----------------------------------------------

def padded_tokens(gen, batch, T, vocab):
    """(batch, T) ids uniform in [1, vocab), each row's length uniform in [T/2, T], then padding."""
    ids = torch.randint(1, vocab, (batch, T), generator=gen)
    lengths = torch.randint(T // 2, T + 1, (batch, 1), generator=gen)
    return ids.masked_fill(torch.arange(T)[None, :] >= lengths, PAD)


def make_workload(name, gen):
    """-> (model, loss_fn, tokens): loss_fn() runs forward and loss on the fixed batch; tokens
    counts its non-padding tokens (source + target for translation)."""
    if name in ("tiny", "tagger"):
        tiny = name == "tiny"
        vocab, tags, batch, T = (100, 8, 4, 8) if tiny else (20000, 18, 32, 48)
        model = Tagger(vocab, tags, dim=32 if tiny else 128, heads=2 if tiny else 4,
                       width=64 if tiny else 512, layers=1 if tiny else 2, max_offset=4 if tiny else 16)
        ids = padded_tokens(gen, batch, T, vocab)
        tags_of = torch.randint(0, tags, (batch, T), generator=gen).masked_fill(ids == PAD, -100)
        return model, lambda: model.loss(ids, tags_of), int((ids != PAD).sum())
    if name == "sentiment":
        model = Classifier(vocab=20000, classes=2)
        ids = padded_tokens(gen, 64, 64, 20000)
        labels = torch.randint(0, 2, (64,), generator=gen)
        return model, lambda: model.loss(ids, labels), int((ids != PAD).sum())
    if name == "translation":
        model = Translator(src_vocab=8000, tgt_vocab=8000)
        src = padded_tokens(gen, 64, 32, 8000)
        tgt = padded_tokens(gen, 64, 33, 8000)      # the target, one longer than its two halves:
        tgt_in, tgt_out = tgt[:, :-1], tgt[:, 1:]  # input shifted right, output shifted left
        tokens = int((src != PAD).sum() + (tgt_out != PAD).sum())
        return model, lambda: model.loss(src, tgt_in, tgt_out), tokens
    if name == "lm":
        model = LanguageModel()
        text = torch.randint(0, 65, (12, 65), generator=gen)  # 12 windows of 64 + 1 characters
        inputs, targets = text[:, :-1], text[:, 1:]
        return model, lambda: model.loss(inputs, targets), inputs.numel()
    raise ValueError(f"unknown workload '{name}' (tiny, tagger, sentiment, translation, lm)")


# ---- measuring ----------------------------------------------------------------------------

def peak_rss_mb():
    """This process's peak resident memory: VmHWM, as tapegrad-bench reports it (ru_maxrss would
    start from the memory of the process that forked this one)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def find_openblas():
    """The OpenBLAS library this process has loaded (through PyTorch), or None when its BLAS
    is something else.  Reads the loaded libraries from /proc/self/maps."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "blas" in line.rsplit("/", 1)[-1]}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)  # already loaded: this returns the same copy
        except OSError:
            continue
        if hasattr(lib, "openblas_get_corename") and hasattr(lib, "openblas_set_num_threads"):
            lib.openblas_get_corename.restype = ctypes.c_char_p
            return lib
    return None


def main():
    parser = argparse.ArgumentParser(
        description="PyTorch reference for tapegrad's training-step benchmark (bench/tapegrad_bench.cpp).")
    parser.add_argument("--workload", required=True, choices=["tiny", "tagger", "sentiment", "translation", "lm"])
    parser.add_argument("--threads", type=int, default=1, help="threads for PyTorch's ops and for OpenBLAS")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (the median is reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--seed", type=int, default=0, help="seeds the weights, the batch and dropout")
    parser.add_argument("--precision", choices=["f32", "bf16"], default="f32",
                        help="bf16: forward and loss under torch.autocast('cpu', torch.bfloat16), "
                             "PyTorch's CPU mixed precision")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="OpenBLAS threads (default: --threads; 0: leave OpenBLAS as the environment sets it)")
    args = parser.parse_args()
    if args.threads < 1 or args.steps < 1 or args.warmup < 0:
        parser.error("--threads and --steps must be positive, --warmup not negative")

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)  # one step is one chain of ops: no inter-op parallelism
    # torch.set_num_threads does not reach OpenBLAS's own thread pool (Debian's PyTorch sends
    # float32 matrix products to OpenBLAS), which otherwise takes every core, or
    # OPENBLAS_NUM_THREADS / OMP_NUM_THREADS.  tapegrad's --threads covers its BLAS too, so
    # the same budget applies here unless --blas-threads says otherwise.
    openblas = find_openblas()
    blas_threads = args.threads if args.blas_threads is None else args.blas_threads
    if openblas and blas_threads > 0:
        openblas.openblas_set_num_threads(blas_threads)
    torch.manual_seed(args.seed)  # weights and dropout masks
    batch_gen = torch.Generator().manual_seed(args.seed)

    model, loss_fn, tokens = make_workload(args.workload, batch_gen)
    model.train()  # dropout on, as in tapegrad's benchmark
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)

    ms, loss = [], float("nan")
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            step_loss = loss_fn()
        step_loss.backward()
        loss = step_loss.item()
        opt.step()
        elapsed = (time.perf_counter() - start) * 1e3
        if step >= args.warmup:
            ms.append(elapsed)

    median = statistics.median(ms)
    result = {
        "system": f"pytorch {torch.__version__}",
        "workload": args.workload,
        "threads": args.threads,
        "ms_per_step": round(median, 3),
        "tokens_per_s": round(tokens / (median / 1e3), 1),
        "params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "loss": loss,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    if args.precision != "f32":
        result["precision"] = args.precision
    if openblas:
        result["blas_core"] = openblas.openblas_get_corename().decode()
        result["blas_threads"] = openblas.openblas_get_num_threads()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
