"""Guided labs as data: ``fixtures/labs/NN-<id>.toml``, read with :mod:`tomllib` and checked against a schema.

A fixture is text only. It sets up a lab (a template, a broker count, and
ordinary lab commands applied at the start) and lists **steps**. A step has a
narrative, what the learner must do, an optional *action* the lab detects from
engine events, optional predict-then-reveal *questions*, automatic *checks*
(names from :mod:`messaging_lab.exercises.checks` with arguments — never code),
hints, an explanation, an interview-ready answer, and a *solution*: the lab
commands that perform the step ("show me", and the automated walkthrough).

:func:`load_exercise` rejects a malformed fixture with :class:`FixtureError`,
whose message is ``file:line: where: reason`` — the line of the offending key,
found by reading the file's text (tomllib gives values, not positions).

Limits: :data:`MAX_STEPS` steps, :data:`MAX_QUESTIONS` questions and
:data:`MAX_CHECKS` checks per step, :data:`MAX_TEXT_CHARS` per text,
:data:`MAX_WAIT_MS` of simulated waiting per step.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core_log.cluster import MAX_BROKERS
from core_log.lab import COMMAND_KINDS, TEMPLATES
from messaging_lab.exercises.checks import CHECK_ARG_TYPES, CHECKS, REQUIRED

FIXTURE_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "labs"
MAX_STEPS = 30
MAX_QUESTIONS = 4
MAX_CHECKS = 8
MAX_CHOICES = 6
MAX_TEXT_CHARS = 4000
MAX_WAIT_MS = 600_000
MAX_SETUP_COMMANDS = 40
GUIDE_SECTIONS = range(1, 17)  # the guide's numbered sections (1 Why messaging exists … 16 One-line summary)
#: The guide's own section headings (seed/messaging-systems-guide.md), for the lab index.
GUIDE_SECTION_TITLES = {
    1: "Why messaging exists", 2: "Core mental model: a durable, ordered log", 3: "High-level flow (production)",
    4: "Producer side (ingestion)", 5: "Topics & partitions", 6: "Keys & ordering",
    7: "Consumer groups (scalability)", 8: "Offsets & replay", 9: "Durability & retention",
    10: "Failure scenarios", 11: "Exactly-once vs at-least-once", 12: "Real production use cases",
    13: "Messaging vs REST", 14: "Platform engineer responsibilities", 15: "Observability",
    16: "One-line interview summary",
}
QUESTION_KINDS = ("choice", "number", "text")
REFERENCE_KINDS = ("leader", "follower")  # {leader = "topic-p"} in a solution names a broker by its role
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,60}$")
_FILE = re.compile(r"^(\d\d)-([a-z0-9][a-z0-9-]*)\.toml$")


class FixtureError(ValueError):
    """A fixture that does not fit the schema: ``file:line: where: reason``."""

    def __init__(self, path: Path | str, line: int, where: str, reason: str) -> None:
        self.path, self.line, self.where, self.reason = str(path), line, where, reason
        super().__init__(f"{path}:{line}: {where}: {reason}")


@dataclass(frozen=True)
class Question:
    id: str
    kind: str  # choice | number | text
    prompt: str
    why: str
    choices: tuple[str, ...] = ()
    answer: Any = None  # choice: index; number: value
    tolerance: float = 0.0
    accept: tuple[str, ...] = ()  # text: any of these words counts as right

    def is_right(self, given: str) -> bool:
        """Whether a learner's answer (as typed or chosen) is right."""
        given = (given or "").strip()
        if self.kind == "choice":
            return given.isdigit() and int(given) == self.answer
        if self.kind == "number":
            try:
                return abs(float(given.replace(",", "")) - float(self.answer)) <= self.tolerance
            except ValueError:
                return False
        words = given.lower()
        return any(a.lower() in words for a in self.accept)

    def right_given(self) -> str:
        """An answer, as a learner would submit it, that :meth:`is_right` accepts (demos and tests)."""
        if self.kind == "choice":
            return str(self.answer)
        if self.kind == "number":
            return f"{self.answer:g}"
        return self.accept[0]

    def right_answer(self) -> str:
        if self.kind == "choice":
            return self.choices[self.answer]
        if self.kind == "number":
            return f"{self.answer:g}" + (f" (± {self.tolerance:g})" if self.tolerance else "")
        return " / ".join(self.accept)


@dataclass(frozen=True)
class CheckRef:
    check: str
    args: dict[str, Any]
    label: str


@dataclass(frozen=True)
class Step:
    id: str
    title: str
    narrative: str
    do: str
    explanation: str
    interview: str
    hints: tuple[str, ...]
    checks: tuple[CheckRef, ...]
    questions: tuple[Question, ...] = ()
    action: dict[str, str] | None = None  # {event, field?, value?}: the learner's action, seen as an engine event
    solution: tuple[dict[str, Any], ...] = ()
    wait_ms: int = 10_000
    show_events: tuple[str, ...] = ()


@dataclass(frozen=True)
class Exercise:
    id: str
    order: int
    title: str
    section: int
    section_title: str
    summary: str
    minutes: int
    template: str
    brokers: int
    setup_commands: tuple[dict[str, Any], ...]
    steps: tuple[Step, ...]
    path: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)


# ── locating a path's line in the TOML text ──────────────────────────────────
class _Locator:
    """Maps a schema path (``steps[2].checks[0].topic``) to the line that defines it, from the raw text."""

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-]+)\s*\]\]?")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")

    def __init__(self, text: str) -> None:
        self.keys: dict[str, int] = {}
        self.elements: dict[str, list[int]] = {}  # "steps[0].checks" → line of each inline element
        counters: dict[str, int] = {}
        table = ""
        lines = text.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            header = self._HEADER.match(line)
            if header and not self._KEY.match(line):
                name = header.group(2)
                if header.group(1) == "[[":
                    parent = self._resolve_parent(name, counters)
                    index = counters.get(parent, -1) + 1
                    counters[parent] = index
                    table = f"{parent}[{index}]"
                    for key in list(counters):  # a new element resets its children's counters
                        if key.startswith(table + "."):
                            del counters[key]
                else:
                    table = self._resolve_parent(name, counters)
                self.keys.setdefault(table, i + 1)
                i += 1
                continue
            key = self._KEY.match(line)
            if key:
                path = f"{table}.{key.group(1)}" if table else key.group(1)
                self.keys.setdefault(path, i + 1)
                i = self._scan_value(lines, i, line[key.end():], path)
                continue
            i += 1

    @staticmethod
    def _resolve_parent(name: str, counters: dict[str, int]) -> str:
        parts = name.split(".")
        out = parts[0]
        for part in parts[1:]:
            if out in counters:
                out = f"{out}[{counters[out]}]"
            out = f"{out}.{part}"
        return out

    def _scan_value(self, lines: list[str], i: int, rest: str, path: str) -> int:
        """Skip past a (possibly multi-line) value, noting where each element of an inline array starts."""
        depth, in_str, triple = 0, "", False
        starts: list[int] = []
        row, text = i, rest
        while True:
            j = 0
            while j < len(text):
                ch = text[j]
                if in_str:
                    if triple and text.startswith(in_str * 3, j):
                        in_str, triple, j = "", False, j + 3
                        continue
                    if not triple and ch == "\\" and in_str == '"':
                        j += 2
                        continue
                    if not triple and ch == in_str:
                        in_str = ""
                    j += 1
                    continue
                if ch in "\"'":
                    triple = text.startswith(ch * 3, j)
                    in_str = ch
                    j += 3 if triple else 1
                    continue
                if ch == "#":
                    break
                if ch in "[{":
                    if depth == 1 and ch == "{":
                        starts.append(row + 1)
                    depth += 1
                elif ch in "]}":
                    depth -= 1
                j += 1
            if (depth <= 0 and not in_str) or row + 1 >= len(lines):
                break
            row += 1
            text = lines[row]
        if starts:
            self.elements[path] = starts
        return row + 1

    def line(self, path: str) -> int:
        """The best line for ``path``: the key itself, else its inline element, else the nearest parent."""
        probe = path
        while probe:
            if probe in self.keys:
                return self.keys[probe]
            m = re.match(r"^(.*)\[(\d+)\](?:\.[^.\[]+)?$", probe)
            if m and m.group(1) in self.elements and int(m.group(2)) < len(self.elements[m.group(1)]):
                return self.elements[m.group(1)][int(m.group(2))]
            probe = probe.rpartition(".")[0] if "." in probe else (probe.rpartition("[")[0] if "[" in probe else "")
        return 1


# ── validation ───────────────────────────────────────────────────────────────
class _Validator:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.locator = _Locator(text)

    def fail(self, where: str, reason: str) -> FixtureError:
        return FixtureError(self.path, self.locator.line(where), where, reason)

    def table(self, value: Any, where: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, "must be a table")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise self.fail(f"{where}.{unknown[0]}" if where else unknown[0],
                            f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
        missing = sorted(required - set(value))
        if missing:
            raise self.fail(where or missing[0], f"missing required key {missing[0]!r}")
        return value

    def text(self, data: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
        value = data.get(key, default)
        at = f"{where}.{key}" if where else key
        if not isinstance(value, str) or not value.strip():
            raise self.fail(at, "must be non-empty text")
        if len(value) > MAX_TEXT_CHARS:
            raise self.fail(at, f"is {len(value)} characters; at most {MAX_TEXT_CHARS}")
        return value.strip()

    def integer(self, data: dict[str, Any], key: str, where: str, low: int, high: int, default: int) -> int:
        value = data.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self.fail(f"{where}.{key}" if where else key, f"must be a whole number from {low} to {high}, "
                                                                 f"got {value!r}")
        return value

    def texts(self, data: dict[str, Any], key: str, where: str, low: int, high: int) -> tuple[str, ...]:
        value = data.get(key, [])
        at = f"{where}.{key}"
        if not isinstance(value, list) or not low <= len(value) <= high:
            raise self.fail(at, f"must be a list of {low} to {high} texts")
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip() or len(item) > MAX_TEXT_CHARS:
                raise self.fail(f"{at}[{i}]", "must be non-empty text")
        return tuple(v.strip() for v in value)

    def command(self, value: Any, where: str, in_solution: bool) -> dict[str, Any]:
        if not isinstance(value, dict) or not isinstance(value.get("kind"), str):
            raise self.fail(where, "a command is a table with a 'kind'")
        kinds = COMMAND_KINDS + (("fast_forward",) if in_solution else ())
        if value["kind"] not in kinds:
            raise self.fail(f"{where}.kind", f"unknown command {value['kind']!r} (known: {', '.join(kinds)})")
        for key, arg in value.items():
            if isinstance(arg, dict):
                if len(arg) != 1 or next(iter(arg)) not in REFERENCE_KINDS or not isinstance(next(iter(arg.values())), str):
                    raise self.fail(f"{where}.{key}", f"a reference is {{leader = \"topic-N\"}} or "
                                                       f"{{follower = \"topic-N\"}}")
            elif not isinstance(arg, CHECK_ARG_TYPES):
                raise self.fail(f"{where}.{key}", "a command argument is text, a number or true/false")
        if value["kind"] == "fast_forward":
            self.integer(value, "seconds", where, 1, 300, 0)
        return dict(value)

    def check(self, value: Any, where: str) -> CheckRef:
        if not isinstance(value, dict) or not isinstance(value.get("check"), str):
            raise self.fail(where, "a check is a table with a 'check' name")
        name = value["check"]
        spec = CHECKS.get(name)
        if spec is None:
            raise self.fail(f"{where}.check", f"unknown check {name!r} (known: {', '.join(sorted(CHECKS))})")
        args = {k: v for k, v in value.items() if k not in ("check", "label")}
        for key, arg in args.items():
            if key not in spec.args:
                raise self.fail(f"{where}.{key}", f"check {name} takes no argument {key!r} (it takes: "
                                                   f"{', '.join(spec.args) or 'none'})")
            kind = spec.args[key][0]
            ok = isinstance(arg, kind) and not (kind is not bool and isinstance(arg, bool))
            if kind is float and isinstance(arg, int) and not isinstance(arg, bool):
                ok = True
            if not ok:
                raise self.fail(f"{where}.{key}", f"must be {kind.__name__}, got {arg!r}")
        for key, (_, default) in spec.args.items():
            if default is REQUIRED and key not in args:
                raise self.fail(where, f"check {name} needs {key!r}")
        label = value.get("label", spec.doc)
        if not isinstance(label, str) or not label.strip():
            raise self.fail(f"{where}.label", "must be non-empty text")
        return CheckRef(name, args, label.strip())

    def question(self, value: Any, where: str) -> Question:
        q = self.table(value, where, {"id", "kind", "prompt", "choices", "answer", "tolerance", "accept", "why"},
                       {"id", "kind", "prompt", "why"})
        kind = q["kind"]
        if kind not in QUESTION_KINDS:
            raise self.fail(f"{where}.kind", f"must be one of {', '.join(QUESTION_KINDS)}")
        if not isinstance(q["id"], str) or not _SLUG.match(q["id"]):
            raise self.fail(f"{where}.id", "must be a slug (a-z, 0-9, -)")
        prompt, why = self.text(q, "prompt", where), self.text(q, "why", where)
        if kind == "choice":
            choices = self.texts(q, "choices", where, 2, MAX_CHOICES)
            answer = q.get("answer")
            if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < len(choices):
                raise self.fail(f"{where}.answer", f"must be the index (0–{len(choices) - 1}) of the right choice")
            return Question(q["id"], kind, prompt, why, choices=choices, answer=answer)
        if kind == "number":
            answer, tol = q.get("answer"), q.get("tolerance", 0)
            if not isinstance(answer, (int, float)) or isinstance(answer, bool):
                raise self.fail(f"{where}.answer", "must be a number")
            if not isinstance(tol, (int, float)) or isinstance(tol, bool) or tol < 0:
                raise self.fail(f"{where}.tolerance", "must be a number ≥ 0")
            return Question(q["id"], kind, prompt, why, answer=answer, tolerance=float(tol))
        accept = self.texts(q, "accept", where, 1, 12)
        return Question(q["id"], kind, prompt, why, accept=accept)

    def step(self, value: Any, where: str) -> Step:
        s = self.table(value, where, {"id", "title", "narrative", "do", "action", "questions", "checks", "hints",
                                      "explanation", "interview", "solution", "wait_ms", "show_events"},
                       {"id", "title", "narrative", "do", "hints", "explanation", "interview"})
        if not isinstance(s["id"], str) or not _SLUG.match(s["id"]):
            raise self.fail(f"{where}.id", "must be a slug (a-z, 0-9, -)")
        action = None
        if "action" in s:
            a = self.table(s["action"], f"{where}.action", {"event", "field", "value"}, {"event"})
            action = {k: str(v) for k, v in a.items()}
        questions_raw = s.get("questions", [])
        if not isinstance(questions_raw, list) or len(questions_raw) > MAX_QUESTIONS:
            raise self.fail(f"{where}.questions", f"must be a list of at most {MAX_QUESTIONS} questions")
        questions = tuple(self.question(q, f"{where}.questions[{i}]") for i, q in enumerate(questions_raw))
        if len({q.id for q in questions}) != len(questions):
            raise self.fail(f"{where}.questions", "question ids must differ")
        checks_raw = s.get("checks", [])
        if not isinstance(checks_raw, list) or len(checks_raw) > MAX_CHECKS:
            raise self.fail(f"{where}.checks", f"must be a list of at most {MAX_CHECKS} checks")
        checks = tuple(self.check(c, f"{where}.checks[{i}]") for i, c in enumerate(checks_raw))
        if not checks and action is None and not questions:
            raise self.fail(where, "a step needs an action, a check or a question, or it could never be done")
        solution_raw = s.get("solution", [])
        if not isinstance(solution_raw, list) or len(solution_raw) > MAX_SETUP_COMMANDS:
            raise self.fail(f"{where}.solution", "must be a list of commands")
        solution = tuple(self.command(c, f"{where}.solution[{i}]", True) for i, c in enumerate(solution_raw))
        if action is not None and not solution:
            raise self.fail(f"{where}.solution", "a step with an action needs the solution that performs it")
        show = s.get("show_events", [])
        if not isinstance(show, list) or not all(isinstance(k, str) and k.isalnum() for k in show):
            raise self.fail(f"{where}.show_events", "must be a list of event kinds (CamelCase names)")
        return Step(id=s["id"], title=self.text(s, "title", where), narrative=self.text(s, "narrative", where),
                    do=self.text(s, "do", where), explanation=self.text(s, "explanation", where),
                    interview=self.text(s, "interview", where), hints=self.texts(s, "hints", where, 1, 5),
                    checks=checks, questions=questions, action=action, solution=solution,
                    wait_ms=self.integer(s, "wait_ms", where, 0, MAX_WAIT_MS, 10_000), show_events=tuple(show))

    def exercise(self, data: dict[str, Any], order: int) -> Exercise:
        self.table(data, "", {"id", "title", "section", "section_title", "summary", "minutes", "setup", "steps",
                              "tags"}, {"id", "title", "section", "section_title", "summary", "setup", "steps"})
        if not isinstance(data["id"], str) or not _SLUG.match(data["id"]):
            raise self.fail("id", "must be a slug (a-z, 0-9, -)")
        section = self.integer(data, "section", "", GUIDE_SECTIONS.start, GUIDE_SECTIONS.stop - 1, 0)
        setup = self.table(data["setup"], "setup", {"template", "brokers", "commands"}, {"template"})
        if setup["template"] not in TEMPLATES:
            raise self.fail("setup.template", f"unknown template {setup['template']!r} "
                                              f"(known: {', '.join(TEMPLATES)})")
        brokers = self.integer(setup, "brokers", "setup", 1, MAX_BROKERS, 3)
        commands_raw = setup.get("commands", [])
        if not isinstance(commands_raw, list) or len(commands_raw) > MAX_SETUP_COMMANDS:
            raise self.fail("setup.commands", f"must be a list of at most {MAX_SETUP_COMMANDS} commands")
        commands = tuple(self.command(c, f"setup.commands[{i}]", False) for i, c in enumerate(commands_raw))
        steps_raw = data["steps"]
        if not isinstance(steps_raw, list) or not 1 <= len(steps_raw) <= MAX_STEPS:
            raise self.fail("steps", f"must have 1 to {MAX_STEPS} steps")
        steps = tuple(self.step(s, f"steps[{i}]") for i, s in enumerate(steps_raw))
        if len({s.id for s in steps}) != len(steps):
            raise self.fail("steps", "step ids must differ")
        tags = data.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) and _SLUG.match(t) for t in tags):
            raise self.fail("tags", "must be a list of slugs")
        return Exercise(id=data["id"], order=order, title=self.text(data, "title", ""), section=section,
                        section_title=self.text(data, "section_title", ""), summary=self.text(data, "summary", ""),
                        minutes=self.integer(data, "minutes", "", 1, 120, 10), template=setup["template"],
                        brokers=brokers, setup_commands=commands, steps=steps, path=str(self.path), tags=tuple(tags))


def load_exercise(path: Path | str) -> Exercise:
    """Read and validate one fixture; raises :class:`FixtureError` (file, line, reason)."""
    path = Path(path)
    m = _FILE.match(path.name)
    if not m:
        raise FixtureError(path, 1, "file name", "must be NN-<id>.toml, e.g. 06-keys-and-ordering.toml")
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise FixtureError(path, int(line.group(1)) if line else 1, "TOML", str(exc)) from None
    exercise = _Validator(path, text).exercise(data, int(m.group(1)))
    if exercise.id != m.group(2):
        raise FixtureError(path, _Locator(text).line("id"), "id", f"must match the file name ({m.group(2)!r})")
    return exercise


def load_all(directory: Path | str = FIXTURE_DIR) -> dict[str, Exercise]:
    """Every fixture in the folder, in file order; the first malformed one raises :class:`FixtureError`."""
    out: dict[str, Exercise] = {}
    for path in sorted(Path(directory).glob("*.toml")):
        exercise = load_exercise(path)
        if exercise.id in out:
            raise FixtureError(path, 1, "id", f"{exercise.id!r} is used by {out[exercise.id].path} too")
        out[exercise.id] = exercise
    return out
