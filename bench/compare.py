"""Runs tapegrad's training-step benchmark and the PyTorch reference side by side.

Each (workload, threads) pair is run on both sides as a fresh process, interleaved: round by
round, workload by workload, tapegrad and PyTorch one after the other (taking turns at going
first), so that a machine that slows down or speeds up during the run affects both alike.
Both get this process's environment, so OPENBLAS_CORETYPE (or OPENBLAS_VERBOSE, ...) applies
to both.  The two sides must report the same number of parameters for each workload (the
check that they built the same model); then a markdown table is printed.

Usage (from the project's root, after building):

    /usr/bin/python3 bench/compare.py -- build/bench/tapegrad-bench
    OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 bench/compare.py --rounds 1 --steps 5 --warmup 2 \\
        --workloads tiny tagger --threads 1 2 --json runs/speed.json -- build/bench/tapegrad-bench

Everything after "--" is the tapegrad benchmark command; both commands get
"--workload W --threads N --steps S --warmup K" (and "--precision bf16" with that option)
appended, and must print one JSON object as
their last line (see bench/torch_reference.py for its fields).  With several rounds, the table
shows the median of the rounds' ms_per_step and the largest peak RSS.
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

WORKLOADS = ["tiny", "tagger", "sentiment", "translation", "lm"]
SIDES = ["tapegrad", "pytorch"]


def parse_args(argv):
    """Splits argv at the first "--": this script's options before it, the tapegrad command after."""
    split = argv.index("--") if "--" in argv else len(argv)
    own, tapegrad_command = argv[:split], argv[split + 1:]
    reference = Path(__file__).resolve().with_name("torch_reference.py")
    parser = argparse.ArgumentParser(
        description="tapegrad's training-step benchmark against PyTorch, interleaved, as a markdown table.",
        usage="compare.py [options] -- TAPEGRAD_BENCH_COMMAND...")
    parser.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=WORKLOADS)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--rounds", type=int, default=1, help="times each run is repeated")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per run")
    parser.add_argument("--torch", default=f"{shlex.quote(sys.executable)} {shlex.quote(str(reference))}",
                        help="the PyTorch reference command (default: %(default)s)")
    parser.add_argument("--precision", choices=["f32", "bf16"], default="f32",
                        help="passed to both sides: bf16 is tapegrad's bfloat16 products against "
                             "PyTorch's autocast to bfloat16")
    parser.add_argument("--json", metavar="PATH", help="also write every run's raw JSON result here")
    args = parser.parse_args(own)
    if not tapegrad_command:
        parser.error("give the tapegrad benchmark command after '--', e.g.\n"
                     "    /usr/bin/python3 bench/compare.py -- build/bench/tapegrad-bench")
    if args.rounds < 1 or args.steps < 1 or args.warmup < 0 or min(args.threads) < 1:
        parser.error("--rounds, --steps and --threads must be positive, --warmup not negative")
    args.commands = {"tapegrad": tapegrad_command, "pytorch": shlex.split(args.torch)}
    return args


def run(command, workload, threads, steps, warmup, precision):
    """Runs one benchmark process; -> its JSON result (the last line of its output)."""
    full = command + ["--workload", workload, "--threads", str(threads),
                      "--steps", str(steps), "--warmup", str(warmup)]
    if precision != "f32":  # only then: a reference without the option still runs float32
        full += ["--precision", precision]
    shown = shlex.join(full)
    print(f"  {shown}", file=sys.stderr, flush=True)
    try:
        done = subprocess.run(full, capture_output=True, text=True, env=os.environ.copy())
    except OSError as e:
        sys.exit(f"compare.py: cannot run {shown}: {e}")
    if done.returncode != 0:
        stderr = "\n".join(done.stderr.splitlines()[-15:]) or "(nothing)"
        sys.exit(f"compare.py: {shown} failed with exit code {done.returncode}; its stderr ends with:\n{stderr}")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    last = lines[-1] if lines else "(no output)"
    try:
        result = json.loads(last)
    except json.JSONDecodeError:
        result = None
    needed = {"ms_per_step", "params", "peak_rss_mb", "loss"}
    if not isinstance(result, dict) or not needed <= result.keys():
        sys.exit(f"compare.py: {shown} did not end its output with a JSON object holding "
                 f"{', '.join(sorted(needed))}; its last line was:\n    {last}")
    return result


def check_params(workload, by_side):
    """Both sides must have built the same model: the same number of trainable scalars."""
    counts = {side: result["params"] for side, result in by_side.items()}
    if counts["tapegrad"] != counts["pytorch"]:
        sys.exit(f"compare.py: workload '{workload}': tapegrad has {counts['tapegrad']:,} parameters, "
                 f"PyTorch {counts['pytorch']:,}: the two sides did not build the same model, so their "
                 f"times cannot be compared")


def fmt_ms(ms):
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}"


def fmt_ratio(ratio):
    return f"{ratio:.2g}" if ratio < 1 else f"{ratio:.2f}"


def main():
    args = parse_args(sys.argv[1:])
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    print(f"OPENBLAS_CORETYPE: {coretype} (set for both)" if coretype else
          "OPENBLAS_CORETYPE: not set (OpenBLAS as installed picks its kernels)")
    print(f"rounds {args.rounds}, {args.steps} timed steps after {args.warmup} untimed per run", flush=True)

    # results[(workload, threads)][side]: the JSON object of each round
    results = {(w, n): {side: [] for side in SIDES} for w in args.workloads for n in args.threads}
    raw = []
    for round_ in range(args.rounds):
        print(f"round {round_ + 1} of {args.rounds}", file=sys.stderr, flush=True)
        pairs = [(w, n) for w in args.workloads for n in args.threads]
        for index, (workload, threads) in enumerate(pairs):
            # The sides take turns at going first, pair after pair and round after round, so
            # that neither always runs on a machine the other has just warmed (or heated) up.
            order = SIDES if (round_ + index) % 2 == 0 else SIDES[::-1]
            pair = {side: run(args.commands[side], workload, threads, args.steps, args.warmup,
                              args.precision)
                    for side in order}
            check_params(workload, pair)
            for side in SIDES:
                results[(workload, threads)][side].append(pair[side])
                raw.append({"round": round_ + 1, "side": side, **pair[side]})

    if args.json:
        with open(args.json, "w") as out:
            json.dump({"openblas_coretype": coretype, "commands": args.commands, "results": raw}, out, indent=1)
            out.write("\n")

    # One row per (workload, threads): median time over the rounds, largest RSS, the last loss.
    def summary(runs):
        return {"ms": statistics.median(r["ms_per_step"] for r in runs),
                "rss": max(r["peak_rss_mb"] for r in runs),
                "loss": runs[-1]["loss"],
                "core": runs[-1].get("blas_core")}

    rows = {key: {side: summary(runs) for side, runs in by_side.items()} for key, by_side in results.items()}
    torch_name = next(iter(results.values()))["pytorch"][-1].get("system", "pytorch").replace("pytorch", "PyTorch")
    cores = sorted({row["pytorch"]["core"] for row in rows.values() if row["pytorch"]["core"]})
    if cores:
        print(f"OpenBLAS kernels PyTorch ran with: {', '.join(cores)}")
    print()
    print(f"| workload | threads | tapegrad ms | {torch_name} ms | ratio | tapegrad peak RSS | "
          f"PyTorch peak RSS | tapegrad loss | PyTorch loss |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (workload, threads), row in rows.items():
        t, p = row["tapegrad"], row["pytorch"]
        print(f"| {workload} | {threads} | {fmt_ms(t['ms'])} | {fmt_ms(p['ms'])} | {fmt_ratio(t['ms'] / p['ms'])} | "
              f"{t['rss']:.0f} MB | {p['rss']:.0f} MB | {t['loss']:.6g} | {p['loss']:.6g} |")

    # Each side at its own best thread count: min over threads of tapegrad / min of PyTorch.
    best = []
    for workload in args.workloads:
        fastest = {side: min(rows[(workload, n)][side]["ms"] for n in args.threads) for side in SIDES}
        best.append(f"{workload} {fmt_ratio(fastest['tapegrad'] / fastest['pytorch'])}")
    print()
    print(f"Best thread count of each (ratio = tapegrad's fastest / PyTorch's fastest over threads "
          f"{', '.join(map(str, args.threads))}; below 1: tapegrad is faster): {', '.join(best)}")


if __name__ == "__main__":
    main()
