#!/usr/bin/env python3
"""Time commands round-robin, so that load from other work on the machine hits them alike.

    bench/interleave.py [-n RUNS] [-w WARMUP] [--json FILE] 'NAME=COMMAND ARGS...' ...

Each round runs every command once, in a fresh random order (stdout and stderr discarded;
a non-zero exit stops everything). Prints, per command, the median, minimum and 90th
percentile wall time, the median's ratio to the first command's, and the paired figure:
the median over rounds of (this command's time - the first command's time in the same
round) with its 95 % bootstrap interval, as a Markdown table. Pairing within a round
cancels the machine's slow drift, which moves medians of separate runs by several %.
With --json, also writes every time and these figures (milliseconds) to FILE. Used by the investigation
in RESULTS.md ("What dominates rwasm's time"), where hyperfine's one-command-after-another
order would let a build that starts half-way through favour one side.
"""

import argparse
import json
import random
import shlex
import statistics
import subprocess
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--runs", type=int, default=40)
    ap.add_argument("-w", "--warmup", type=int, default=3)
    ap.add_argument("--json", metavar="FILE", help="also write the times and figures here")
    ap.add_argument("--seed", type=int, default=1, help="seed of the per-round order and the bootstrap")
    ap.add_argument("commands", nargs="+", metavar="NAME=COMMAND")
    args = ap.parse_args()
    named = []
    for spec in args.commands:
        name, sep, cmd = spec.partition("=")
        if not sep or not cmd.strip():
            sys.exit(f"interleave.py: expected NAME=COMMAND, got {spec!r}")
        named.append((name, shlex.split(cmd)))
    times = {name: [] for name, _ in named}
    argv_of = {name: shlex.join(argv) for name, argv in named}
    rng = random.Random(args.seed)
    for round_ in range(args.warmup + args.runs):
        order = list(named)
        rng.shuffle(order)
        for name, argv in order:
            start = time.perf_counter()
            rc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
            elapsed = (time.perf_counter() - start) * 1000
            if rc != 0:
                sys.exit(f"interleave.py: {name}: exit status {rc}: {shlex.join(argv)}")
            if round_ >= args.warmup:
                times[name].append(elapsed)
    base = statistics.median(times[named[0][0]])
    first = times[named[0][0]]
    results = []
    print(f"| ({args.runs} rounds) | median | min | p90 | ratio | paired: median of − {named[0][0]} [95 %] |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, _ in named:
        t = sorted(times[name])
        med = statistics.median(t)
        p90 = t[min(len(t) - 1, int(len(t) * 0.9))]
        diffs = [x - y for x, y in zip(times[name], first)]
        low, high = bootstrap_median(diffs, rng)
        paired = f"{statistics.median(diffs):+.2f} ms [{low:+.2f}, {high:+.2f}]"
        print(f"| {name} | {med:.2f} ms | {t[0]:.2f} ms | {p90:.2f} ms | {med / base:.2f}× | {paired} |")
        results.append({"name": name, "command": argv_of[name], "times_ms": times[name],
                        "median": med, "min": t[0], "p90": p90, "ratio": med / base,
                        "paired_median": statistics.median(diffs), "paired_low": low, "paired_high": high})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": args.runs, "warmup": args.warmup, "baseline": named[0][0],
                       "results": results}, f, indent=1)


def bootstrap_median(values: list, rng: random.Random, resamples: int = 2000) -> tuple:
    """The 2.5th and 97.5th percentiles of the median of `values` resampled with replacement."""
    meds = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(resamples))
    return meds[int(resamples * 0.025)], meds[int(resamples * 0.975) - 1]


if __name__ == "__main__":
    main()
