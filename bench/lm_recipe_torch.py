"""nanoGPT's CPU recipe for Tiny Shakespeare, trained in PyTorch and scored as tapegrad-lm scores.

nanoGPT's README trains a character-level GPT on a laptop CPU (4 layers, 4 heads, width 128,
context 64, batches of 12, 2,000 steps, no dropout; AdamW at 1e-3 with beta2 0.99, 100 steps of
warm-up, a cosine decay to 1e-4, weight decay 0.1 on matrices only, gradients clipped to norm 1)
and reports a validation loss of about 1.88, estimated on 20 random batches.  tapegrad-lm
scores the whole validation text instead.  This script trains the recipe in PyTorch and gives
both figures, so that tapegrad's result can be read against the same recipe in another
framework, scored the same way:

    --model tapegrad   the model of bench/torch_reference.py's lm workload, `tapegrad-lm --recipe
                       nanogpt-cpu`'s model
                       (biases, Xavier weights, embeddings N(0, 1/C) scaled by sqrt(C)),
                       809,856 parameters
    --model nanogpt    the model as nanoGPT builds it (no biases, every matrix N(0, 0.02^2), the
                       projections into the residual stream N(0, (0.02 / sqrt(2 layers))^2),
                       embeddings added unscaled)

Usage (Debian: apt-get install python3-torch; the data: scripts/get-data.sh tinyshakespeare):

    /usr/bin/python3 bench/lm_recipe_torch.py --data data/tinyshakespeare --model nanogpt --seed 1

The last line is one JSON object: the validation loss over the whole text (windows of 64 that do
not overlap, every character after the first scored once, as `tapegrad-lm eval`), nanoGPT's
estimate (the mean loss of 20 batches of 12 random windows) and the spread of that estimate over
50 draws, the wall time and the parameters.
"""

import argparse
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

import torch_reference as ref


class NanoGptLayer(nn.Module):
    """Pre-LayerNorm block without biases: x + attn(ln1(x)), then x + mlp(ln2(x))."""

    def __init__(self, dim, heads, layers):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.Parameter(torch.ones(dim)), nn.Parameter(torch.ones(dim))
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.attn_out = nn.Linear(dim, dim, bias=False)
        self.fc = nn.Linear(dim, 4 * dim, bias=False)
        self.fc_out = nn.Linear(4 * dim, dim, bias=False)
        for m in (self.qkv, self.fc):
            nn.init.normal_(m.weight, 0.0, 0.02)
        for m in (self.attn_out, self.fc_out):  # into the residual stream
            nn.init.normal_(m.weight, 0.0, 0.02 / math.sqrt(2 * layers))

    def forward(self, x):
        B, T, C = x.shape
        h = F.layer_norm(x, (C,), self.ln1)
        q, k, v = self.qkv(h).view(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        logits = q @ k.transpose(-2, -1) / math.sqrt(C // self.heads)           # (B, H, T, T)
        future = torch.ones(T, T, dtype=torch.bool).triu(1)
        attn = logits.masked_fill(future, float("-inf")).softmax(dim=-1)
        x = x + self.attn_out((attn @ v).transpose(1, 2).reshape(B, T, C))
        return x + self.fc_out(F.gelu(self.fc(F.layer_norm(x, (C,), self.ln2))))


class NanoGptModel(nn.Module):
    """ids (B, T) -> logits (B, T, V): token and position tables N(0, 0.02^2) added, the blocks,
    a final LayerNorm without bias, and the output layer tied to the token table."""

    def __init__(self, vocab, dim=128, heads=4, layers=4, max_len=64):
        super().__init__()
        self.embed = nn.Parameter(torch.randn(vocab, dim) * 0.02)
        self.positions = nn.Parameter(torch.randn(max_len, dim) * 0.02)
        self.layers = nn.ModuleList(NanoGptLayer(dim, heads, layers) for _ in range(layers))
        self.final_norm = nn.Parameter(torch.ones(dim))

    def forward(self, ids):
        x = self.embed[ids] + self.positions[: ids.shape[1]]
        for layer in self.layers:
            x = layer(x)
        return F.layer_norm(x, (x.shape[-1],), self.final_norm) @ self.embed.t()

    def loss(self, inputs, targets):
        logits = self(inputs)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def read_split(data_dir):
    """input.txt's characters as ids: the first floor(0.9 N) train, the rest validate."""
    with open(f"{data_dir}/input.txt", encoding="utf-8") as f:
        text = f.read()
    n = math.floor(0.9 * len(text))
    chars = sorted(set(text[:n]))
    index = {c: i for i, c in enumerate(chars)}
    def ids(part):
        return torch.tensor([index[c] for c in part], dtype=torch.long)
    return ids(text[:n]), ids(text[n:]), len(chars)


def windows(data, starts, T):
    """The inputs data[s .. s + T - 1] and targets data[s + 1 .. s + T] of each start s."""
    x = torch.stack([data[s : s + T] for s in starts])
    y = torch.stack([data[s + 1 : s + T + 1] for s in starts])
    return x, y


@torch.no_grad()
def whole_text_loss(model, data, T, batch=128):
    """Windows of T that do not overlap; each target scored once (tapegrad-lm eval's rule: the
    last window ends at the text's end and scores only what the one before did not)."""
    targets, nats = len(data) - 1, 0.0
    T = min(T, targets)  # a text shorter than a window is one window
    ends = list(range(T, targets, T)) + [targets]
    for first in range(0, len(ends), batch):
        chunk = ends[first : first + batch]
        x, y = windows(data, [e - T for e in chunk], T)
        logp = F.log_softmax(model(x).float(), dim=-1).gather(-1, y.unsqueeze(-1)).squeeze(-1)
        for b, end in enumerate(chunk):
            previous = ends[first + b - 1] if first + b > 0 else 0
            nats -= logp[b, T - (end - previous) :].sum().item()
    return nats / targets


@torch.no_grad()
def estimate(model, data, T, gen, batches=20, batch=12):
    """nanoGPT's estimate: the mean loss of `batches` batches of random windows."""
    losses = []
    for _ in range(batches):
        starts = torch.randint(len(data) - T, (batch,), generator=gen).tolist()
        losses.append(model.loss(*windows(data, starts, T)).item())
    return statistics.mean(losses)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="a folder with input.txt")
    parser.add_argument("--model", choices=["tapegrad", "nanogpt"], default="nanogpt")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train, valid, vocab = read_split(args.data)
    T, B, lr, min_lr, warmup = 64, 12, 1e-3, 1e-4, 100
    model = ref.LanguageModel(vocab=vocab) if args.model == "tapegrad" else NanoGptModel(vocab)
    params = sum(p.numel() for p in model.parameters())
    groups = [{"params": [p for p in model.parameters() if p.dim() >= 2], "weight_decay": 0.1},
              {"params": [p for p in model.parameters() if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.99))
    gen = torch.Generator().manual_seed(args.seed)
    clock = time.perf_counter()
    for step in range(args.steps):
        if step < warmup:  # nanoGPT's schedule
            rate = lr * (step + 1) / (warmup + 1)
        else:
            progress = (step - warmup) / (args.steps - warmup)
            rate = min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (lr - min_lr)
        for g in opt.param_groups:
            g["lr"] = rate
        starts = torch.randint(len(train) - T, (B,), generator=gen).tolist()
        loss = model.loss(*windows(train, starts, T))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if (step + 1) % 250 == 0:
            print(f"step {step + 1}: train loss {loss.item():.4f}, {time.perf_counter() - clock:.0f} s",
                  flush=True)
    seconds = time.perf_counter() - clock
    model.eval()
    whole = whole_text_loss(model, valid, T)
    draws = [estimate(model, valid, T, torch.Generator().manual_seed(1000 + d)) for d in range(50)]
    print(json.dumps({"model": args.model, "seed": args.seed, "params": params,
                      "valid_loss_whole_text": round(whole, 4),
                      "valid_loss_estimate_mean": round(statistics.mean(draws), 4),
                      "valid_loss_estimate_sd": round(statistics.stdev(draws), 4),
                      "valid_loss_estimate_range": [round(min(draws), 4), round(max(draws), 4)],
                      "train_seconds": round(seconds, 1), "threads": args.threads}))


if __name__ == "__main__":
    main()
