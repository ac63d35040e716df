"""Walk a guided lab straight on a LabWorld (no Django): the engine-level half of the walkthrough tests."""

from __future__ import annotations

import time

from core_log.lab import LabWorld
from messaging_lab.exercises.fixtures import Exercise
from messaging_lab.exercises.guide import GuideRun

EVALUATE_EVERY_MS = 500


def right_answer(question) -> str:  # type: ignore[no-untyped-def]
    return question.right_given()


def apply(world: LabWorld, command: dict) -> None:
    if command["kind"] == "fast_forward":
        world.advance(world.now_ms() + int(command["seconds"]) * 1000)
        return
    result = world.apply(command)
    pending = result.get("pending")
    if pending is not None:
        world.cluster.run_until(lambda: pending.done, 20_000, step_ms=5)


def walk(exercise: Exercise, seed: int = 1) -> list[dict]:
    """Do every step as the fixture's solution says; returns per-step timings. Fails on a step that stays red."""
    world = LabWorld(exercise.template, seed, brokers=exercise.brokers)
    for command in exercise.setup_commands:
        apply(world, dict(command))
    guide = GuideRun(exercise)
    guide.evaluate(world)
    report = []
    for step in exercise.steps:
        started, wall = world.now_ms(), time.perf_counter()
        for q in step.questions:
            guide.answer(q.id, right_answer(q))
        for command in guide.solution(world):
            apply(world, command)
        while guide.status == "active" and world.now_ms() - started <= step.wait_ms:
            guide.evaluate(world)
            if guide.status == "active":
                world.advance(world.now_ms() + EVALUATE_EVERY_MS)
        guide.evaluate(world)
        assert guide.status == "done", (
            f"{exercise.id} step {step.id} (seed {seed}) not done after {step.wait_ms} ms: "
            + "; ".join(f"{'ok' if ok else 'NO'} {detail}" for ok, detail in guide.state["results"]))
        report.append({"step": step.id, "sim_ms": world.now_ms() - started,
                       "wall_s": round(time.perf_counter() - wall, 2)})
        guide.next(world)
    assert guide.finished
    return report
