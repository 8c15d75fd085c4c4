"""The layout rules tests/test_layout.py checks, as functions over a package's source folder, so
that a test can run them on a copy with a violation injected and see each one fail.

* every import form counts: ``from .x import y``, ``from lorabar.harness.x import y``,
  ``import lorabar.harness.x``, a relative import that climbs out of the harness and back in,
  imports inside functions, and a module named in a string (``importlib.import_module``, a
  registry's ``"module:function"``); the harness imports neither ``lorabar.cli`` nor
  ``lorabar.apps`` (they sit above it);
* a private name is borrowed by ``from m import _y`` or by ``m._y`` on a module ``m`` of the
  package, also through an alias (``s = m``) (a private *module* of the package,
  ``from . import _validate``, is fine);
* a public name is defined by a ``def``, a ``class``, an assignment (tuple targets too), an
  annotated one or a walrus at module level, also inside a top-level ``if``/``try``/``with``/
  ``for``/``while``/``match``, and by a function's ``global`` assignment; an alias of an
  imported module's attribute (``X = mod.X``) and an import re-export do not define;
* the harness' stages import only what the layout document's table allows
  (docs/guides/development.md, the table after ``<!-- stage-imports``).
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

PACKAGE = "lorabar"


def modules(root: Path) -> list[tuple[Path, str, ast.Module]]:
    """``(path, dotted name, tree)`` of every module under ``root`` (the package's folder)."""
    out = []
    for p in sorted(root.rglob("*.py")):
        parts = [PACKAGE, *p.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append((p, ".".join(parts), ast.parse(p.read_text())))
    return out


def _is_module(root: Path, dotted: str) -> bool:
    rel = dotted.split(".")[1:]
    return bool(rel) and (
        (root.joinpath(*rel).with_suffix(".py")).is_file()
        or (root.joinpath(*rel) / "__init__.py").is_file()
    )


def _source(path: Path, name: str, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` reads from."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    base = package[: len(package) - node.level + 1] if node.level else []
    return ".".join(base + (node.module.split(".") if node.module else []))


def imports(path: Path, name: str, tree: ast.Module) -> list[tuple[int, str, list[str]]]:
    """``(line, absolute module, imported names)`` of every import in the module, relative ones
    resolved (``from .. import x``: the module ``..`` with the name ``x``)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            out.append((node.lineno, _source(path, name, node), [a.name for a in node.names]))
    return out


ABOVE = ("cli", "apps")  # the package's parts above the harness, no stage may import them


def stage_of(dotted: str) -> str | None:
    """The harness stage (or the part above it, ``cli``/``apps``) a dotted module is in."""
    parts = dotted.split(".")
    if parts[:2] == [PACKAGE, "harness"] and len(parts) > 2:
        return parts[2]
    return parts[1] if parts[:1] == [PACKAGE] and len(parts) > 1 and parts[1] in ABOVE else None


NAMED = re.compile(rf"{PACKAGE}(\.\w+)+(:\w+)?")


def _named_modules(tree: ast.Module) -> list[tuple[int, str]]:
    """Modules a string names in full (``"lorabar.harness.x.y:f"``): imported by name later."""
    return [
        (node.lineno, node.value.split(":")[0])
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and NAMED.fullmatch(node.value)
    ]


def stage_table(document: str) -> dict[str, set[str]]:
    """The table after ``<!-- stage-imports``: ``| stage | may import |`` (``-``: nothing; words
    in parentheses are the reason)."""
    block = document.split("<!-- stage-imports", 1)[1].split("\n\n", 2)[1]
    table = {}
    for row in block.splitlines()[2:]:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        allowed = re.sub(r"\(.*?\)", "", cells[1]).replace("`", "")
        table[cells[0].strip("`")] = {w.strip() for w in allowed.split(",") if w.strip()} - {"-"}
    return table


def stage_violations(root: Path, table: dict[str, set[str]]) -> list[str]:
    wrong = []
    harness = [(p, n, t) for p, n, t in modules(root) if n.startswith(f"{PACKAGE}.harness.")]
    for path, name, tree in harness:
        stage = stage_of(name)
        stage = stage.removesuffix(".py")
        found = imports(path, name, tree) + [(line, m, []) for line, m in _named_modules(tree)]
        for line, target, names in found:
            parent = target in (f"{PACKAGE}.harness", PACKAGE)  # from lorabar(.harness) import x
            others = [stage_of(f"{target}.{n}") for n in names] if parent else [stage_of(target)]
            for other in others:
                if other not in (None, stage) and other not in table.get(stage, set()):
                    wrong.append(f"{path.relative_to(root)}:{line} {stage} imports {other}")
    known = {stage_of(n) for _, n, _ in harness}
    if known != set(table):
        wrong.append(f"stages {sorted(known)} but the table lists {sorted(table)}")
    return wrong


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _bound_modules(root: Path, path: Path, name: str, tree: ast.Module) -> dict[str, str]:
    """The names a module binds to modules of the package (``import a.b as x``, ``from a
    import b`` where ``a.b`` is a module)."""
    bound = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    bound[alias.asname or PACKAGE] = alias.name if alias.asname else PACKAGE
        elif isinstance(node, ast.ImportFrom):
            source = _source(path, name, node)
            for alias in node.names:
                if _is_module(root, f"{source}.{alias.name}"):
                    bound[alias.asname or alias.name] = f"{source}.{alias.name}"
    for node in ast.walk(tree):  # s = m: an alias of a module is the module
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Name)
            and node.value.id in bound
        ):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    bound[target.id] = bound[node.value.id]
    return bound


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


def borrowed_privates(root: Path) -> list[str]:
    borrowed = []
    for path, name, tree in modules(root):
        where = path.relative_to(root)
        for line, target, names in imports(path, name, tree):
            for n in names:
                if _private(n) and not _is_module(root, f"{target}.{n}"):
                    borrowed.append(f"{where}:{line} from {target} import {n}")
        bound = _bound_modules(root, path, name, tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                owner = _dotted(node.value)
                head = owner.split(".")[0] if owner else None
                if head not in bound:
                    continue
                module = bound[head] + owner[len(head) :]  # lorabar.x.y for x.y
                if _is_module(root, module) and not _is_module(root, f"{module}.{node.attr}"):
                    borrowed.append(f"{where}:{node.lineno} {owner}.{node.attr}")
    return borrowed


def _targets(target: ast.AST) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for t in target.elts for n in _targets(t)]
    if isinstance(target, ast.Starred):
        return _targets(target.value)
    return []


def _alias(value: ast.AST | None, modules: set[str]) -> str | None:
    """``X`` when ``value`` is ``mod.X`` for an imported module ``mod`` (a re-export)."""
    if (
        isinstance(value, ast.Attribute)
        and isinstance(value.value, ast.Name)
        and value.value.id in modules
    ):
        return value.attr
    return None


def _defined(body: list[ast.stmt], modules: set[str]) -> list[str]:
    names = []
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            alias = _alias(node.value, modules)
            names += [n for t in node.targets for n in _targets(t) if n != alias]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names += [node.target.id] if node.target.id != _alias(node.value, modules) else []
        elif isinstance(
            node, (ast.If, ast.Try, ast.With, ast.For, ast.While, getattr(ast, "TryStar", ast.Try))
        ):
            for block in ("body", "orelse", "finalbody"):
                names += _defined(getattr(node, block, []), modules)
            for handler in getattr(node, "handlers", []):
                names += _defined(handler.body, modules)
        elif isinstance(node, ast.Match):
            for case in node.cases:
                names += _defined(case.body, modules)
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names += [w.target.id for w in ast.walk(node) if isinstance(w, ast.NamedExpr)]
    return names


def _global_assignments(tree: ast.Module) -> list[str]:
    """Names a function declares ``global`` and assigns: module-level definitions too."""
    names = []
    for func in ast.walk(tree):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            declared = {n for g in ast.walk(func) if isinstance(g, ast.Global) for n in g.names}
            names += [
                n
                for a in ast.walk(func)
                if isinstance(a, (ast.Assign, ast.AugAssign))
                for t in (a.targets if isinstance(a, ast.Assign) else [a.target])
                for n in _targets(t)
                if n in declared
            ]
    return names


def public_definitions(root: Path, exempt: set[str] = frozenset()) -> dict[str, list[str]]:
    defs = defaultdict(list)
    for path, _, tree in modules(root):
        where = str(path.relative_to(root))
        imported = {
            a.asname or a.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for a in node.names
        }
        for name in dict.fromkeys(_defined(tree.body, imported) + _global_assignments(tree)):
            if not name.startswith("_") and not (where.startswith("cli/") and name in exempt):
                defs[name].append(where)
    return defs


def defined_twice(root: Path, exempt: set[str] = frozenset()) -> dict[str, list[str]]:
    return {n: w for n, w in public_definitions(root, exempt).items() if len(w) > 1}
