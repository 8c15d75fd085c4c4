"""The code's shape, as the development guide states it: modules of at most 450 lines, functions
of at most 60, no private name borrowed from another module, no public name defined twice with
two meanings, and the harness' stages importing against the pipeline's order."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "lorabar"
# the subcommand protocol of lorabar.cli: each subcommand module defines these two
CLI_PROTOCOL = {"add_parser", "run"}
# what a harness stage may import (its own modules always): the pipeline's order reversed
STAGE_IMPORTS = {
    "tasks": {"models"}, "models": set(), "run": {"tasks", "models"},
    "plan": {"run", "tasks"}, "execute": {"plan", "run"},
    "report": {"run", "plan", "tasks"},
    "compare": {"plan", "execute", "report", "run", "tasks", "models", "keep"},
    "keep": {"report", "run"},
}


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text())) for p in sorted(SRC.rglob("*.py"))]


def test_modules_and_functions_are_small():
    long_modules = [f"{p.relative_to(SRC)}: {n}" for p in sorted(SRC.rglob("*.py"))
                    if (n := len(p.read_text().splitlines())) > 450]
    long_functions = [f"{p.relative_to(SRC)}:{node.lineno} {node.name}: "
                      f"{node.end_lineno - node.lineno + 1} lines"
                      for p, tree in _modules() for node in ast.walk(tree)
                      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.end_lineno - node.lineno + 1 > 60]
    assert long_modules == [] and long_functions == []


def test_no_private_name_is_borrowed_from_another_module():
    """``from x import _y`` only where ``_y`` is a private module of the package itself."""
    borrowed = []
    for p, tree in _modules():
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            for alias in node.names:
                if not alias.name.startswith("_") or alias.name.startswith("__"):
                    continue
                if node.module is None:  # from . import _validate: a private module of ours
                    base = p.parent
                    for _ in range(node.level - 1):
                        base = base.parent
                    if (base / f"{alias.name}.py").is_file():
                        continue
                borrowed.append(f"{p.relative_to(SRC)}:{node.lineno} {alias.name}")
    assert borrowed == []


def _public_definitions() -> dict[str, list[str]]:
    """Top-level public names a module defines (an alias ``X = mod.X`` re-exports, not defines)."""
    defs = defaultdict(list)
    for p, tree in _modules():
        where = str(p.relative_to(SRC))
        for node in tree.body:
            names = []
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                alias = node.value.attr if isinstance(node.value, ast.Attribute) else None
                names = [t.id for t in node.targets if isinstance(t, ast.Name) and t.id != alias]
            for name in names:
                if not name.startswith("_") and not (where.startswith("cli/")
                                                     and name in CLI_PROTOCOL):
                    defs[name].append(where)
    return defs


def test_no_public_name_is_defined_twice():
    twice = {name: where for name, where in _public_definitions().items() if len(where) > 1}
    assert twice == {}


def _stage(parts: tuple[str, ...]) -> str:
    return parts[0].removesuffix(".py")


def test_harness_stages_import_against_the_pipeline():
    harness = SRC / "harness"
    wrong = []
    for p in sorted(harness.rglob("*.py")):
        rel = p.relative_to(harness).parts
        if rel == ("__init__.py",):
            continue
        stage = _stage(rel)
        for node in ast.walk(ast.parse(p.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.level == 0:
                continue
            up = node.level - 1
            if up > len(rel) - 1 or (up == len(rel) - 1 and not node.module):
                continue  # lorabar's core (above the harness)
            base = list(rel[:-1])[:len(rel) - 1 - up]
            target = base + (node.module.split(".") if node.module else [])
            if up == len(rel) - 1 and target and not (harness / target[0]).exists() and \
                    not (harness / f"{target[0]}.py").exists():
                continue
            other = target[0].removesuffix(".py") if target else stage
            if other != stage and other not in STAGE_IMPORTS[stage]:
                wrong.append(f"{'/'.join(rel)}:{node.lineno} {stage} imports {other}")
    assert wrong == [] and set(STAGE_IMPORTS) == {_stage(q.relative_to(harness).parts)
                                                  for q in harness.rglob("*.py")
                                                  if q.name != "__init__.py" or
                                                  q.parent != harness}



def files_using_fixture(folder: Path, fixture: str) -> set[str]:
    """The test files whose test functions take ``fixture`` as an argument."""
    return {p.name for p in folder.glob("test_*.py")
            for node in ast.walk(ast.parse(p.read_text()))
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test")
            and fixture in {a.arg for a in node.args.args}}


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

    return {re.sub(r"[-_.]+", "-", name).lower(): version
            for name, version in re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", text, re.M)}


def lock_disagreements(constraints: str, lock: str, torch_spec: str) -> list[str]:
    """Where requirements/lock.txt does not install what the constraints (and the bootstrap's
    torch pin) say: a missing package or another version (a local ``+cpu`` tag allowed)."""
    want = {**_pins(constraints), **_pins(torch_spec)}
    have = _pins(lock)
    return [f"{name}: constraints {v}, lock {have.get(name)}" for name, v in sorted(want.items())
            if have.get(name, "").split("+")[0] != v]


def unlocked_requirements(pyproject: str, lock: str) -> list[str]:
    """The requirements of pyproject.toml (dependencies and every extra) the lock lacks."""
    import re
    import tomllib

    project = tomllib.loads(pyproject)["project"]
    specs = project.get("dependencies", []) + [
        spec for extra in project.get("optional-dependencies", {}).values() for spec in extra]
    names = {re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.\-]+", spec)[0]).lower()
             for spec in specs}
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
    pyproject = ('[project]\ndependencies = ["torch>=2", "Foo_Bar[x]>=1"]\n'
                 '[project.optional-dependencies]\nz = ["baz; python_version<\'4\'"]\n')
    assert unlocked_requirements(pyproject, "torch==2.13.0\nfoo-bar==1\n") == ["baz"]
    # the check fails on a violation: a constraint the lock does not follow, one it lacks
    assert lock_disagreements("peft==0.21.2\nuv==1\n", "peft==0.20.0\n", "torch==2.13.0") == [
        "peft: constraints 0.21.2, lock 0.20.0", "torch: constraints 2.13.0, lock None",
        "uv: constraints 1, lock None"]
