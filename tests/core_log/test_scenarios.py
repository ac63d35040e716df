"""Named fault scenarios against the checker: safe ones valid on every seed, unsafe ones show their anomaly.

Each scenario runs on SEEDS seeds (the seed moves fault timings and drives every random
choice). A failure message names the seed: ``python -m core_log simulate --scenario NAME
--seed N`` replays it exactly. The 1,000-seed sweep is ``bench/scenario_sweep.py`` (README).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core_log.sim import SCENARIOS, run_scenario

SEEDS = range(50)
RUNNER_SEEDS = range(5)  # consumer-side scenarios run two clusters or longer workloads; the sweep covers more
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_verdicts_over_50_seeds(name):
    """Ensure safe scenarios are valid on every seed and unsafe ones show their anomaly on ≥ 80% of seeds."""
    scenario = SCENARIOS[name]
    seeds = SEEDS if scenario.runner is None else RUNNER_SEEDS
    results = [run_scenario(name, seed, strict=True) for seed in seeds]
    misses = [r["seed"] for r in results if not r["as_expected"]]
    if scenario.always:
        assert not misses, f"{name} broke a guarantee on seeds {misses} (reproduce with --seed {misses[0]})"
    else:
        assert len(misses) <= len(results) // 5, f"{name} missed {scenario.expect} on seeds {misses}"
    assert all(r["acked"] > 0 and r["consumed"] > 0 for r in results)


def test_scenario_runs_are_reproducible():
    """Ensure the same scenario and seed give the same verdict, counts and event total."""
    first, second = run_scenario("acks1-leader-crash", 7), run_scenario("acks1-leader-crash", 7)
    assert first == second


@pytest.mark.slow
def test_simulate_cli_prints_the_design_contract():
    """Ensure `python -m core_log simulate --json` prints scenario, seed, valid, anomalies, acked, consumed."""
    out = subprocess.run([sys.executable, "-m", "core_log", "simulate", "--scenario", "no-idempotence-lost-acks",
                          "--seed", "3", "--json"], cwd=ROOT, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert {"scenario", "seed", "valid", "anomalies", "acked", "consumed"} <= set(result)
    assert result["scenario"] == "no-idempotence-lost-acks" and result["seed"] == 3
    assert result["valid"] is False and result["anomalies"]["duplicate"] > 0
    listing = subprocess.run([sys.executable, "-m", "core_log", "scenarios"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout
    assert all(name in listing for name in SCENARIOS)
    told = subprocess.run([sys.executable, "-m", "core_log", "simulate", "--scenario", "unclean-election",
                           "--seed", "2", "--timeline"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "Unclean election" in told and "Checker: lost-write" in told and "seed=2: INVALID" in told
    bad = subprocess.run([sys.executable, "-m", "core_log", "simulate", "--scenario", "nope"], cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown scenario" in bad.stderr
    bad_seed = subprocess.run([sys.executable, "-m", "core_log", "simulate", "--scenario", "nope", "--seed", "x"],
                              cwd=ROOT, capture_output=True, text=True)
    assert bad_seed.returncode == 2 and "whole number" in bad_seed.stderr


def test_anomalies_are_narrated_on_the_timeline():
    """Ensure the checker's findings appear as AnomalyDetected events with the explanation and cause."""
    from core_log.sim import Run

    run = Run(SCENARIOS["acks1-leader-crash"], 1)
    result = run.execute()
    detected = run.cluster.events.of_kind("AnomalyDetected")
    names = {e.fields["anomaly"] for e in detected}
    assert "lost-write" in names and names <= set(result["anomalies"])
    lost = next(e for e in detected if e.fields["anomaly"] == "lost-write")
    assert "acks=1" in lost.text and lost.fields["partition"].startswith("jepsen-")
    assert run.cluster.events.of_kind("RecordsTruncated")  # the old leader cut the orphaned records
