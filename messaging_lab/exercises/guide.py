"""One learner's way through one guided lab: the step state machine over a running LabWorld.

A step goes **active → done**, and the learner moves on with *next*:

* *active*: the lab compares the engine against the step's checks (and its
  action, an engine event) every few hundred milliseconds of wall time; the
  learner may answer the step's questions — ideally before acting, which is the
  point of predict-then-reveal (an answer given after the outcome is marked so).
* *done*: every check passed, the action was seen and every question answered.
  The page reveals the right answers, the outcome (the engine's own sentences),
  the explanation and the interview answer.
* after the last step the guide is *finished*.

The whole state is a JSON-ready dict (:attr:`GuideRun.state`), stored with the
learner's progress, so a lab rebuilt after a restart resumes at the same step,
with the same baseline and answers. Nothing here uses Django; the runtime calls
it on the engine thread, the only thread that touches the world.
"""

from __future__ import annotations

from typing import Any

from core_log.lab import LabCommandError, LabWorld
from core_log.messages import TopicPartition
from messaging_lab.exercises.checks import CheckContext, capture_baseline, run_check
from messaging_lab.exercises.fixtures import Exercise, Step

MAX_ANSWER_CHARS = 500
MAX_OUTCOME_EVENTS = 8


class GuideError(ValueError):
    """A guide action that cannot be done now (unknown question, not done yet…); the message says why."""


class GuideRun:
    """The learner's position in an exercise, its checks' latest results, and the answers given."""

    def __init__(self, exercise: Exercise, state: dict[str, Any] | None = None) -> None:
        self.exercise = exercise
        self.state: dict[str, Any] = state or {"step": 0, "status": "new", "answers": {}, "results": [],
                                               "memory": {}, "baseline": None, "outcome": [], "shown": [],
                                               "hints": 0}

    # ── where we are ─────────────────────────────────────────────────────────
    @property
    def step_index(self) -> int:
        return int(self.state["step"])

    @property
    def status(self) -> str:
        return str(self.state["status"])

    @property
    def step(self) -> Step | None:
        i = self.step_index
        return self.exercise.steps[i] if i < len(self.exercise.steps) else None

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    def steps_done(self) -> int:
        return self.step_index + (1 if self.status in ("done", "finished") else 0) if not self.finished \
            else len(self.exercise.steps)

    def begin(self, world: LabWorld) -> None:
        """Start the current step: capture the baseline its checks compare against."""
        self.state.update(status="active", baseline=capture_baseline(world), results=[], memory={}, outcome=[],
                          hints=0)

    # ── evaluation ───────────────────────────────────────────────────────────
    def _labels(self, step: Step) -> list[str]:
        labels = []
        if step.action:
            labels.append(f"You did it: {step.action['event']} seen in the engine's events")
        labels.extend(c.label for c in step.checks)
        return labels

    def evaluate(self, world: LabWorld) -> bool:
        """Re-run the active step's checks; returns whether anything the page shows changed."""
        if self.status == "new":
            self.begin(world)
            return True
        step = self.step
        if self.status != "active" or step is None:
            return False
        baseline = self.state["baseline"]
        log = world.cluster.events
        first = max(0, baseline["event_index"] - log.dropped)
        events = list(log)[first:]
        results: list[list[Any]] = []
        if step.action:
            a = step.action
            ctx = CheckContext(world, baseline, events)
            results.append(list(run_check("event_seen", ctx, {"kind": a["event"], "field": a.get("field", ""),
                                                              "value": a.get("value", "")})))
        for i, ref in enumerate(step.checks):
            memory = self.state["memory"].setdefault(str(i), {})
            results.append(list(run_check(ref.check, CheckContext(world, baseline, events, memory), ref.args)))
        changed = results != self.state["results"]
        self.state["results"] = results
        answered = all(q.id in self.state["answers"].get(step.id, {}) for q in step.questions)
        if all(ok for ok, _ in results) and answered:
            shown = set(step.show_events) | ({step.action["event"]} if step.action else set())
            self.state["outcome"] = [e.text for e in events if e.kind in shown][-MAX_OUTCOME_EVENTS:]
            self.state["status"] = "done"
            changed = True
        return changed

    # ── learner actions ──────────────────────────────────────────────────────
    def answer(self, question_id: str, given: str) -> dict[str, Any]:
        """Record the learner's answer to one of the current step's questions (once; it is a prediction)."""
        step = self.step
        if step is None or self.status not in ("active", "done"):
            raise GuideError("there is no step to answer now")
        question = next((q for q in step.questions if q.id == question_id), None)
        if question is None:
            raise GuideError(f"this step has no question {question_id!r}")
        given = (given or "").strip()
        if not given or len(given) > MAX_ANSWER_CHARS:
            raise GuideError(f"give an answer of 1 to {MAX_ANSWER_CHARS} characters")
        if question.kind == "choice" and not (given.isdigit() and int(given) < len(question.choices)):
            raise GuideError("choose one of the answers")
        answers = self.state["answers"].setdefault(step.id, {})
        if question_id in answers:
            raise GuideError("you answered this one already; predictions are kept as first given")
        outcome_seen = bool(self.state["results"]) and all(ok for ok, _ in self.state["results"])
        answers[question_id] = {"given": given, "right": question.is_right(given),
                                "before_outcome": not outcome_seen and self.status == "active"}
        return answers[question_id]

    def next(self, world: LabWorld) -> None:
        """Move on from a done step (the reveal has been shown) to the next, or finish."""
        if self.status != "done":
            raise GuideError("finish this step first: its checks are not all green yet"
                             if self.status == "active" else "there is no next step")
        if self.step_index + 1 >= len(self.exercise.steps):
            self.state.update(status="finished", step=len(self.exercise.steps))
            return
        self.state["step"] = self.step_index + 1
        self.begin(world)

    def hint(self) -> str:
        """Reveal the next hint of the current step."""
        step = self.step
        if step is None or self.status != "active":
            raise GuideError("hints are for the step in progress")
        shown = min(int(self.state.get("hints", 0)) + 1, len(step.hints))
        self.state["hints"] = shown
        return step.hints[shown - 1]

    def solution(self, world: LabWorld) -> list[dict[str, Any]]:
        """The current step's solution commands with broker references resolved against the lab now.

        Allowed while the step is active and after it is done (a question-only step is done as soon as it is
        answered; its demonstration can still be watched then)."""
        step = self.step
        if step is None or self.status not in ("active", "done"):
            raise GuideError("'show me' is for the step on the page")
        if step.id not in self.state["shown"]:
            self.state["shown"].append(step.id)
        return [resolve_command(world, c) for c in step.solution]

    # ── what the page shows ──────────────────────────────────────────────────
    def view(self) -> dict[str, Any]:
        """The compact live state the page patches in (texts come from the server-rendered panel)."""
        step = self.step
        return {"exercise": self.exercise.id, "step": self.step_index, "status": self.status,
                "steps": len(self.exercise.steps),
                "checks": [{"label": label, "ok": r[0], "detail": r[1]}
                           for label, r in zip(self._labels(step), self.state["results"])] if step else []}

    def summary(self) -> dict[str, Any]:
        """Answers and how they went, over the steps done so far (the end-of-lab page)."""
        right = total = predicted = 0
        for step in self.exercise.steps:
            for q in step.questions:
                a = self.state["answers"].get(step.id, {}).get(q.id)
                if a:
                    total += 1
                    right += bool(a["right"])
                    predicted += bool(a["before_outcome"])
        return {"questions": total, "right": right, "predicted_before_outcome": predicted,
                "shown": len(self.state["shown"]), "steps": len(self.exercise.steps)}


def resolve_command(world: LabWorld, command: dict[str, Any]) -> dict[str, Any]:
    """Replace ``{leader = "topic-N"}`` / ``{follower = "topic-N"}`` with a broker id as the lab stands now."""
    out: dict[str, Any] = {}
    for key, value in command.items():
        if isinstance(value, dict):
            role, name = next(iter(value.items()))
            topic, _, p = str(name).rpartition("-")
            update = world.cluster.controller.partitions.get(TopicPartition(topic, int(p) if p.isdigit() else -1))
            if update is None:
                raise LabCommandError(f"no partition {name}")
            if role == "leader":
                if update.leader < 0:
                    raise LabCommandError(f"{name} has no leader right now")
                value = update.leader
            else:
                followers = [b for b in update.isr if b != update.leader] or \
                            [b for b in update.replicas if b != update.leader]
                if not followers:
                    raise LabCommandError(f"{name} has no follower")
                value = followers[0]
        out[key] = value
    return out
