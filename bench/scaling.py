#!/usr/bin/env python3
"""A model of data-parallel training on N machines, from what this machine measures.

  /usr/bin/python3 bench/scaling.py build/bench/tapegrad-bench [--workload translation]

Measured here:
  - compute(N): one machine's step on its 1/N share of the workload's batch, alone
    (tapegrad-bench --share-of N, both cores; the median of 3 rounds);
  - the gradient exchange: its bytes, its number of allreduce calls, and its time between two
    ranks over TCP on the loopback interface (mpirun --mca btl self,tcp), after backward
    (--no-overlap) and what is left of it when buckets start during backward.
Assumed (printed with the table):
  - a ring allreduce: each machine sends and receives 2 (N - 1) / N of the gradient bytes, in
    2 (N - 1) messages per allreduce call;
  - a 10 Gbit/s network (1.25 GB/s each way) with 50 us per message;
  - the exchange after backward, as the training loop does it by default (step = compute +
    exchange); and, for --overlap where the network moves data in the background, the bound with
    the exchange entirely hidden (step = max(compute, exchange)).
"""
import argparse
import json
import statistics
import subprocess

NETWORK_BYTES_PER_S = 10e9 / 8
LATENCY_S = 50e-6


def run_json(command):
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bench", help="path of tapegrad-bench")
    parser.add_argument("--workload", default="translation")
    parser.add_argument("--steps", type=int, default=7)
    parser.add_argument("--mpirun", default="mpirun")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    timing = ["--workload", args.workload, "--steps", str(args.steps), "--warmup", "2"]

    alone = run_json([args.bench, *timing, "--threads", "2"])
    tokens = alone["tokens_per_s"] * alone["ms_per_step"] / 1e3  # per global batch
    loopback = [args.mpirun, "--allow-run-as-root", "-np", "2", "--mca", "btl", "self,tcp", "--mca", "btl_tcp_if_include",
                "lo", args.bench, *timing, "--threads", "1"]
    exchange = run_json(loopback + ["--no-overlap"])
    overlapped = run_json(loopback)
    size, calls = exchange["allreduce_bytes"], exchange["allreduce_calls"]
    print(f"workload {args.workload}: {alone['params']} parameters, {size / 1e6:.1f} MB of float32 gradients "
          f"in {calls} allreduce calls a step; {tokens:.0f} tokens a batch")
    print(f"measured: the exchange between 2 ranks over TCP loopback takes {exchange['allreduce_ms']:.1f} ms "
          f"({size / exchange['allreduce_ms'] / 1e6:.2f} GB/s for the gradient bytes) after backward; "
          f"started during backward ({overlapped['started_in_backward']} of {overlapped['allreduce_calls'] - 1} buckets), "
          f"{overlapped['allreduce_ms']:.1f} ms of it is left after backward")
    print(f"assumed: ring allreduce, {NETWORK_BYTES_PER_S * 8 / 1e9:.0f} Gbit/s, {LATENCY_S * 1e6:.0f} us a message\n")

    print("| machines | compute a step (measured) | exchange (model) | step, exchange after compute | tokens/s "
          "| speed-up | efficiency | speed-up, exchange hidden | same batch per machine (N x the global batch): efficiency |")
    print("|---|---|---|---|---|---|---|---|---|")
    # The machine is shared and noisy: each share is timed --rounds times, round-robin, and the
    # median taken.
    machines = [1, 2, 4, 8, 16]
    times = {n: [] for n in machines}
    for _ in range(args.rounds):
        for n in machines:
            times[n].append(run_json([args.bench, *timing, "--threads", "2", "--share-of", str(n)])["ms_per_step"] / 1e3)
    base = statistics.median(times[1])  # one machine, the whole batch: the speed-ups' reference
    for n in machines:
        compute = statistics.median(times[n])
        if n == 1:
            ring = 0.0
        else:
            ring = 2 * (n - 1) / n * size / NETWORK_BYTES_PER_S + calls * 2 * (n - 1) * LATENCY_S
        step = compute + ring
        speedup = base / step
        hidden = base / max(compute, ring)
        weak = base / (base + ring)
        print(f"| {n} | {compute * 1e3:.0f} ms | {ring * 1e3:.0f} ms | {step * 1e3:.0f} ms | {tokens / step:.0f} "
              f"| {speedup:.2f} | {speedup / n:.0%} | {hidden:.2f} | {weak:.0%} |")


if __name__ == "__main__":
    main()
