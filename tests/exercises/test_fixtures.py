"""Guided lab fixtures: every one loads and passes the schema; a malformed one is refused with file, line and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from messaging_lab.exercises.checks import CHECKS
from messaging_lab.exercises.fixtures import FIXTURE_DIR, FixtureError, load_all, load_exercise

GOOD = '''id = "tiny"
title = "A tiny lab"
section = 7
section_title = "Consumer groups"
summary = "Two members."

[setup]
template = "sandbox"

[[steps]]
id = "look"
title = "Look"
narrative = "Two members."
do = "Look at the groups panel."
checks = [
  { check = "group_stable", group = "dashboard", members = 2 },
]
hints = ["Look."]
explanation = "Range gives 3 each."
interview = "Groups split partitions."

[[steps.questions]]
id = "n"
kind = "number"
prompt = "How many?"
answer = 3
why = "6 / 2."
'''


def _write(tmp_path: Path, text: str, name: str = "07-tiny.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_every_fixture_loads_and_passes_the_schema():
    """Ensure every file in fixtures/labs loads, ids are unique, and each step can be completed in principle."""
    exercises = load_all()
    assert len(exercises) == len(list(FIXTURE_DIR.glob("*.toml"))) >= 2
    for ex in exercises.values():
        assert ex.steps, ex.id
        for step in ex.steps:
            assert step.checks or step.action or step.questions, (ex.id, step.id)
            assert all(ref.check in CHECKS for ref in step.checks)
            assert step.explanation and step.interview and step.hints


def test_the_good_example_loads(tmp_path):
    """Ensure the minimal fixture used below is itself valid (so each broken variant fails for its one reason)."""
    ex = load_exercise(_write(tmp_path, GOOD))
    assert ex.id == "tiny" and ex.order == 7 and ex.steps[0].questions[0].is_right("3")
    assert not ex.steps[0].questions[0].is_right("2")


@pytest.mark.parametrize("old, new, line, reason", [
    ('check = "group_stable"', 'check = "group_stabel"', 16, "unknown check 'group_stabel'"),
    ('members = 2', 'members = "two"', 16, "must be int"),
    ('group = "dashboard", members = 2', 'members = 2', 16, "needs 'group'"),
    ('template = "sandbox"', 'template = "nope"', 8, "unknown template 'nope'"),
    ('answer = 3\n', 'answer = "three"\n', 26, "must be a number"),
    ('hints = ["Look."]\n', '', 10, "missing required key 'hints'"),
    ('kind = "number"', 'kind = "essay"', 24, "must be one of choice, number, text"),
    ('id = "look"', 'id = "Look Here"', 11, "must be a slug"),
    ('section = 7', 'section = 99', 3, "from 1 to 16"),
    ('explanation = "Range gives 3 each."', 'explanation = "Range gives 3 each."\ncolour = "blue"', 20, "unknown key 'colour'"),
    ('do = "Look at the groups panel."', 'do = "Look at the groups panel.', 14, "TOML"),
])
def test_a_malformed_fixture_is_refused_with_file_line_and_reason(tmp_path, old, new, line, reason):
    """Ensure each kind of mistake names the file, the line of the offending key, and why."""
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(FixtureError) as err:
        load_exercise(path)
    assert err.value.path == str(path)
    assert reason in str(err.value), str(err.value)
    assert err.value.line == line, str(err.value)
    assert str(err.value).startswith(f"{path}:{line}: ")


def test_steps_need_something_to_do_and_solutions_for_actions(tmp_path):
    """Ensure a step with nothing to check could never be done, and an action without a solution, are refused."""
    no_checks = GOOD.replace('checks = [\n  { check = "group_stable", group = "dashboard", members = 2 },\n]\n', '')
    no_checks = no_checks[:no_checks.index("[[steps.questions]]")]
    with pytest.raises(FixtureError, match="could never be done"):
        load_exercise(_write(tmp_path, no_checks))
    action = GOOD.replace('hints = ["Look."]', 'action = { event = "ConsumerAdded" }\nhints = ["Look."]')
    with pytest.raises(FixtureError, match="needs the solution") as err:
        load_exercise(_write(tmp_path, action))
    assert err.value.line == 10  # the step's own [[steps]] line: the key is missing, so there is no line of its own


def test_commands_in_setup_and_solutions_are_known_kinds(tmp_path):
    """Ensure an unknown command kind or a bad broker reference is refused where it is written."""
    bad = GOOD.replace('template = "sandbox"', 'template = "sandbox"\ncommands = [{ kind = "explode" }]')
    with pytest.raises(FixtureError, match="unknown command 'explode'") as err:
        load_exercise(_write(tmp_path, bad))
    assert err.value.line == 9
    ref = GOOD.replace('hints = ["Look."]', 'solution = [\n  { kind = "crash_broker", broker = { boss = "t-0" } },\n]\nhints = ["Look."]')
    with pytest.raises(FixtureError, match="a reference is") as err:
        load_exercise(_write(tmp_path, ref))
    assert err.value.line == 19  # the inline element's own line inside the solution array


def test_file_name_and_id_must_agree(tmp_path):
    """Ensure the NN-<id>.toml naming is enforced, so the index order and the ids cannot drift."""
    with pytest.raises(FixtureError, match="must be NN-<id>.toml"):
        load_exercise(_write(tmp_path, GOOD, "tiny.toml"))
    with pytest.raises(FixtureError, match="must match the file name") as err:
        load_exercise(_write(tmp_path, GOOD, "07-other.toml"))
    assert err.value.line == 1
