"""Seed sweep of every named scenario: how often each shows its expected verdict.

    .venv/bin/python -m bench.scenario_sweep --seeds 1000 [--jobs 2] [--scenario NAME] [--json]

Safe scenarios must be valid on every seed; unsafe ones should show their anomaly on at
least 80% of seeds. Every miss is listed with its seed, so it replays with
``python -m core_log simulate --scenario NAME --seed N``. Runs scenarios in ``--jobs``
worker processes (each run is independent and deterministic).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from core_log.sim import SCENARIOS, run_scenario


def _one(args: tuple[str, int]) -> tuple[str, int, bool, dict[str, int]]:
    name, seed = args
    result = run_scenario(name, seed)
    return name, seed, bool(result["as_expected"]), dict(result["anomalies"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scenario_sweep")
    parser.add_argument("--seeds", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not 1 <= args.seeds <= 100_000 or not 1 <= args.jobs <= 64:
        parser.error("--seeds must be 1..100000 and --jobs 1..64")
    names = args.scenario or sorted(SCENARIOS)
    started = time.perf_counter()
    summary: dict[str, dict[str, object]] = {}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for name in names:
            t0 = time.perf_counter()
            results = list(pool.map(_one, [(name, seed) for seed in range(args.seeds)], chunksize=8))
            misses = [seed for _, seed, ok, _ in results if not ok]
            counts: dict[str, int] = {}
            for *_, anomalies in results:
                for anomaly in anomalies:
                    counts[anomaly] = counts.get(anomaly, 0) + 1
            summary[name] = {
                "expected": SCENARIOS[name].expectation,
                "seeds": args.seeds,
                "as_expected": args.seeds - len(misses),
                "rate": round((args.seeds - len(misses)) / args.seeds, 4),
                "misses": misses[:50],
                "seeds_with_anomaly": dict(sorted(counts.items())),
                "wall_s": round(time.perf_counter() - t0, 1),
            }
            if not args.json:
                print(f"{name:28} {summary[name]['as_expected']}/{args.seeds} as expected "
                      f"(expect {summary[name]['expected']}); misses {misses[:10]}", flush=True)
    if args.json:
        print(json.dumps({"scenarios": summary, "wall_s": round(time.perf_counter() - started, 1)}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
