"""Every guided lab walked straight on the engine over many seeds (a learner's lab gets a random seed).

The default run walks each lab on the service layer once (test_guided_labs.py);
this sweep is for fixture authors and CI-independent checks:

    LAB_WALK_SEEDS=20 .venv/bin/python -m pytest -q tests/exercises/test_walk_seeds.py
"""

from __future__ import annotations

import os

import pytest

from messaging_lab.exercises.fixtures import load_all
from tests.exercises.walk import walk

SEEDS = int(os.environ.get("LAB_WALK_SEEDS", "0"))


@pytest.mark.skipif(SEEDS <= 0, reason="a long sweep: set LAB_WALK_SEEDS=N to walk every lab on N seeds")
@pytest.mark.parametrize("exercise_id", sorted(load_all()))
def test_every_lab_passes_on_many_seeds(exercise_id):
    """Ensure each lab's steps complete with their solutions on seeds 1…N, naming the red checks otherwise."""
    exercise = load_all()[exercise_id]
    for seed in range(1, SEEDS + 1):
        walk(exercise, seed)
