"""core_log is sans-IO and deterministic: no Django, no event loop, no wall clock, no global randomness."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "core_log"
EXEMPT = ENGINE / "wire"  # the wire protocol adapter may use asyncio

FORBIDDEN_MODULES = frozenset(
    {"django", "channels", "asyncio", "time", "threading", "uuid", "datetime", "secrets"})
ALLOWED_RANDOM_ATTRS = frozenset({"Random"})  # an injected, seeded random.Random is fine
FORBIDDEN_OS_ATTRS = frozenset({"environ", "getenv", "environb", "getenvb", "putenv", "unsetenv"})


def violations(source: str, filename: str = "<src>") -> list[str]:
    """Every impure construct in ``source``, as 'file:line: what'."""
    tree = ast.parse(source, filename)
    random_names: set[str] = set()  # local names bound to the random module
    os_names: set[str] = set()
    found: list[str] = []

    def bad(node: ast.AST, what: str) -> None:
        found.append(f"{filename}:{getattr(node, 'lineno', '?')}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top in FORBIDDEN_MODULES:
                    bad(node, f"imports {alias.name}")
                if alias.name == "random":
                    random_names.add(alias.asname or "random")
                if alias.name == "os":
                    os_names.add(alias.asname or "os")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            top = node.module.split(".")[0]
            if top in FORBIDDEN_MODULES:
                bad(node, f"imports from {node.module}")
            if node.module == "random":
                for alias in node.names:
                    if alias.name not in ALLOWED_RANDOM_ATTRS:
                        bad(node, f"imports random.{alias.name}")
            if node.module == "os":
                for alias in node.names:
                    if alias.name in FORBIDDEN_OS_ATTRS or alias.name == "*":
                        bad(node, f"imports os.{alias.name}")
        elif isinstance(node, ast.Call):
            func = node.func
            dynamic = (isinstance(func, ast.Name) and func.id == "__import__") or (
                isinstance(func, ast.Attribute) and func.attr == "import_module")
            if dynamic and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str) \
                    and node.args[0].value.split(".")[0] in FORBIDDEN_MODULES:
                bad(node, f"imports {node.args[0].value} dynamically")

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in random_names and node.attr not in ALLOWED_RANDOM_ATTRS:
                bad(node, f"uses the global random.{node.attr}")
            if node.value.id in os_names and node.attr in FORBIDDEN_OS_ATTRS:
                bad(node, f"reads the environment (os.{node.attr})")
    return found


def engine_files() -> list[Path]:
    return sorted(p for p in ENGINE.rglob("*.py") if EXEMPT not in p.parents)


class CheckerCase(NamedTuple):
    name: str
    source: str
    clean: bool


CHECKER_CASES = [
    CheckerCase("seeded Random instance", "import random\nr = random.Random(3)\nx: random.Random = r\n", True),
    CheckerCase("from random import Random", "from random import Random\nr = Random(1)\n", True),
    CheckerCase("injected rng method", "def f(rng):\n    return rng.choice([1, 2])\n", True),
    CheckerCase("os.path is fine", "import os\nos.path.join('a', 'b')\n", True),
    CheckerCase("global random.choice", "import random\nrandom.choice([1])\n", False),
    CheckerCase("aliased global random", "import random as r\nr.randint(1, 2)\n", False),
    CheckerCase("random function as a value", "import random\nf = random.random\n", False),
    CheckerCase("from random import shuffle", "from random import shuffle\n", False),
    CheckerCase("import time", "import time\n", False),
    CheckerCase("from time import monotonic", "from time import monotonic\n", False),
    CheckerCase("nested import of django", "def f():\n    from django.conf import settings\n", False),
    CheckerCase("import channels.layers", "import channels.layers\n", False),
    CheckerCase("import asyncio", "import asyncio\n", False),
    CheckerCase("threading", "import threading\n", False),
    CheckerCase("uuid", "import uuid\n", False),
    CheckerCase("datetime", "from datetime import datetime\n", False),
    CheckerCase("secrets", "import secrets\n", False),
    CheckerCase("os.environ", "import os\nos.environ.get('X')\n", False),
    CheckerCase("os.getenv", "import os\nos.getenv('X')\n", False),
    CheckerCase("from os import environ", "from os import environ\n", False),
    CheckerCase("dynamic import", "__import__('time')\n", False),
    CheckerCase("importlib", "import importlib\nimportlib.import_module('asyncio')\n", False),
]


@pytest.mark.parametrize("case", CHECKER_CASES, ids=lambda c: c.name)
def test_checker_flags_impure_constructs(case: CheckerCase) -> None:
    """Ensure the purity checker itself tells pure code from impure code."""
    assert (violations(case.source) == []) == case.clean, violations(case.source)


def test_engine_sources_are_pure() -> None:
    """Ensure no file in core_log (outside core_log/wire) imports forbidden modules or reads global randomness or env."""
    files = engine_files()
    names = {p.name for p in files}
    assert {"records.py", "partitioner.py", "log.py", "segment.py", "storage.py", "clock.py"} <= names
    found = [v for p in files for v in violations(p.read_text(encoding="utf-8"), str(p.relative_to(ROOT)))]
    assert found == []


@pytest.mark.slow
def test_importing_the_engine_loads_no_django_channels_or_asyncio() -> None:
    """Ensure importing the engine in a fresh interpreter pulls in no Django, Channels or asyncio."""
    code = ("import core_log.log, core_log.records, core_log.partitioner; import sys; "
            "print([m for m in sys.modules if m.split('.')[0] in ('django','channels','asyncio')])")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
