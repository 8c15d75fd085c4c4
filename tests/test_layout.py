"""The code's shape, as the development guide states it: modules of at most 450 lines, functions
of at most 60, no private name borrowed from another module, no public name defined twice with
two meanings, and the harness' stages importing against the pipeline's order."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from layout_rules import borrowed_privates, defined_twice, stage_table, stage_violations

SRC = Path(__file__).resolve().parents[1] / "src" / "lorabar"
# the subcommand protocol of lorabar.cli: each subcommand module defines these (interrupted:
# what a Ctrl-C kept, where it keeps something)
CLI_PROTOCOL = {"add_parser", "run", "interrupted"}


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text())) for p in sorted(SRC.rglob("*.py"))]


def test_modules_and_functions_are_small():
    long_modules = [
        f"{p.relative_to(SRC)}: {n}"
        for p in sorted(SRC.rglob("*.py"))
        if (n := len(p.read_text().splitlines())) > 450
    ]
    long_functions = [
        f"{p.relative_to(SRC)}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines"
        for p, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > 60
    ]
    assert long_modules == [] and long_functions == []


DEVELOPMENT = SRC.parents[1] / "docs" / "guides" / "development.md"


def test_no_private_name_is_borrowed_from_another_module():
    """``from m import _y`` and ``m._y`` on a module of the package, in every import form."""
    assert borrowed_privates(SRC) == []


def test_no_public_name_is_defined_twice():
    """Also annotated (``METHODS: dict = {}``) and inside a top-level ``if``/``try``."""
    assert defined_twice(SRC, CLI_PROTOCOL) == {}


def test_harness_stages_import_against_the_pipeline():
    """The layout document's table, every import form (absolute, ``import x``, relative that
    climbs out and back in, lazy)."""
    assert stage_violations(SRC, stage_table(DEVELOPMENT.read_text())) == []


# one violation of each kind, appended to a module of the tasks stage of a copy of the package
VIOLATIONS = {
    "an absolute import of a later stage": (
        "from lorabar.harness.report import load as _load\n",
        stage_violations,
    ),
    "import x of a later stage": ("import lorabar.harness.execute\n", stage_violations),
    "a relative import that climbs out and back in": (
        "def _later():\n    from ...harness.report import paired\n    return paired\n",
        stage_violations,
    ),
    "a module's private name": (
        "from ... import schedules as _s\n_X = _s.NAMES\n_Y = _s._private_thing\n",
        borrowed_privates,
    ),
    "a private name imported": ("from ...schedules import _private_thing\n", borrowed_privates),
    "an annotated definition of a name defined elsewhere": ("METHODS: dict = {}\n", defined_twice),
    "a definition inside a top-level if": ("if True:\n    TASKS = {}\n", defined_twice),
    "from the harness, a later stage by name": (
        "from lorabar.harness import report as _r\n",
        stage_violations,
    ),
    "importlib.import_module of a later stage": (
        "import importlib\n_L = importlib.import_module('lorabar.harness.report.load')\n",
        stage_violations,
    ),
    "an import string of a later stage": (
        '_B = "lorabar.harness.execute.local:run"\n',
        stage_violations,
    ),
    "the command line, above the harness": (
        "from lorabar.cli import grid as _g\n",
        stage_violations,
    ),
    "a module's private name through an alias": (
        "from lorabar import schedules\n_S = schedules\n_Y = _S._private_thing\n",
        borrowed_privates,
    ),
    "a definition inside a top-level for": ("for _i in range(1):\n    TASKS = {}\n", defined_twice),
    "a tuple target": ("TASKS, _OTHER = {}, {}\n", defined_twice),
    "a walrus at module level": ("(TASKS := {})\n", defined_twice),
    "a function's global": ("def _f():\n    global TASKS\n    TASKS = {}\n", defined_twice),
    "an attribute of something not a module": (
        "class _C:\n    TASKS = {}\n\n\nTASKS = _C().TASKS\n",
        defined_twice,
    ),
}


@pytest.mark.parametrize("kind", sorted(VIOLATIONS))
def test_the_layout_checks_fail_on_each_violation(kind, tmp_path):
    import shutil

    copy = tmp_path / "lorabar"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__"))
    table = stage_table(DEVELOPMENT.read_text())

    def run(check):
        if check is stage_violations:
            return check(copy, table)
        return check(copy, CLI_PROTOCOL) if check is defined_twice else check(copy)

    code, check = VIOLATIONS[kind]
    assert not run(check), "the copy is clean before the violation"
    with open(copy / "harness" / "tasks" / "contract.py", "a") as f:
        f.write("\n" + code)
    assert run(check), f"{kind}: not caught"


def files_using_fixture(folder: Path, fixture: str) -> set[str]:
    """The test files whose test functions take ``fixture`` as an argument."""
    return {
        p.name
        for p in folder.glob("test_*.py")
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.FunctionDef)
        and node.name.startswith("test")
        and fixture in {a.arg for a in node.args.args}
    }


def test_smollm2_is_converted_by_one_worker(tmp_path):
    """./scripts/run-tests gives each file to one pytest-xdist worker (--dist loadfile): the
    session fixture that converts SmolLM2 (~30 s) runs once only while its users share a file."""
    assert files_using_fixture(Path(__file__).resolve().parent, "smollm2") == {"test_lm.py"}
    # the check fails on a violation: a second file that takes the fixture
    (tmp_path / "test_a.py").write_text("def test_x(smollm2):\n    pass\n")
    (tmp_path / "test_b.py").write_text("def test_y(tmp_path, smollm2):\n    pass\n")
    assert files_using_fixture(tmp_path, "smollm2") == {"test_a.py", "test_b.py"}


def _pins(text: str) -> dict[str, str]:
    """``name==version`` lines (names normalized as PEP 503 does), comments left out."""
    import re

    return {
        re.sub(r"[-_.]+", "-", name).lower(): version
        for name, version in re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", text, re.M)
    }


def lock_disagreements(constraints: str, lock: str, torch_spec: str) -> list[str]:
    """Where requirements/lock.txt does not install what the constraints (and the bootstrap's
    torch pin) say: a missing package or another version (a local ``+cpu`` tag allowed)."""
    want = {**_pins(constraints), **_pins(torch_spec)}
    have = _pins(lock)
    return [
        f"{name}: constraints {v}, lock {have.get(name)}"
        for name, v in sorted(want.items())
        if have.get(name, "").split("+")[0] != v
    ]


def unlocked_requirements(pyproject: str, lock: str) -> list[str]:
    """The requirements of pyproject.toml (dependencies and every extra) the lock lacks."""
    import re
    import tomllib

    project = tomllib.loads(pyproject)["project"]
    specs = project.get("dependencies", []) + [
        spec for extra in project.get("optional-dependencies", {}).values() for spec in extra
    ]
    names = {
        re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.\-]+", spec)[0]).lower() for spec in specs
    }
    return sorted(names - set(_pins(lock)))


def test_the_lock_installs_what_the_constraints_pin():
    root = Path(__file__).resolve().parents[1]
    bootstrap = (root / "scripts" / "bootstrap.sh").read_text()
    torch_spec = bootstrap.split('TORCH_SPEC="', 1)[1].split('"', 1)[0]
    constraints = (root / "requirements" / "constraints.txt").read_text()
    lock = (root / "requirements" / "lock.txt").read_text()
    assert lock_disagreements(constraints, lock, torch_spec) == []
    assert _pins(lock)["torch"] == "2.13.0+cpu" and "pytest-xdist" in _pins(lock)
    # uv installs the project with --no-deps: every requirement of pyproject.toml is in the lock
    assert unlocked_requirements((root / "pyproject.toml").read_text(), lock) == []
    # (and it fails on a violation: an extra's requirement the lock lacks)
    pyproject = (
        '[project]\ndependencies = ["torch>=2", "Foo_Bar[x]>=1"]\n'
        "[project.optional-dependencies]\nz = [\"baz; python_version<'4'\"]\n"
    )
    assert unlocked_requirements(pyproject, "torch==2.13.0\nfoo-bar==1\n") == ["baz"]
    # the check fails on a violation: a constraint the lock does not follow, one it lacks
    assert lock_disagreements("peft==0.21.2\nuv==1\n", "peft==0.20.0\n", "torch==2.13.0") == [
        "peft: constraints 0.21.2, lock 0.20.0",
        "torch: constraints 2.13.0, lock None",
        "uv: constraints 1, lock None",
    ]
