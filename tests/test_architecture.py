"""The package's shape: dependencies point one way, and there are no import circles.

Every ``import``/``from ... import`` in ``src/lslo`` is read with ``ast``, including the ones
inside functions (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "lslo"

# A module may import modules of its own rank or below; each subpackage keeps to its rank.
RANK = {
    "errors": 0,
    "pruning": 1,
    "decoding": 1,
    "convert": 1,
    "tuner": 2,
    "data": 3,
    "training": 4,
    "evaluation": 5,
    "reporting": 5,
    "serving": 5,
    "search": 6,
    "experiments": 6,
    "hf": 6,
    "cli": 7,
    "testbed": 8,
}
PEERS_APART = [("evaluation", "reporting"), ("search", "experiments"), ("serving", "evaluation"),
               ("serving", "reporting")]


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports() -> dict[str, set[str]]:
    mods = {module_name(p): p for p in SRC.rglob("*.py")}
    out: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for t in targets:
                # a module's own ancestor packages are imported first anyway: not a dependency
                if t in mods and t != name and not name.startswith(t + "."):
                    deps.add(t)
        out[name] = deps
    return out


def top(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_subpackage_has_a_rank():
    subs = {top(m) for m in imports()} - {"__init__", "__main__"}
    assert subs <= set(RANK), f"give these a rank: {sorted(subs - set(RANK))}"


def violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, deps in graph.items():
        src = top(mod)
        if src in ("__init__", "__main__"):
            continue  # the public API and `python -m lslo` may reach anything
        for d in deps:
            dst = top(d)
            if dst == "__init__" or dst == src:
                if dst == "__init__":
                    bad.append(f"{mod} -> {d} (import from the subpackage, not the top-level API)")
                continue
            if RANK[dst] > RANK[src] or (src, dst) in PEERS_APART or (dst, src) in PEERS_APART:
                bad.append(f"{mod} -> {d}")
    return sorted(bad)


def test_dependencies_point_down():
    bad = violations(imports())
    assert not bad, "upward or sideways imports:\n" + "\n".join(bad)


def test_no_import_cycles():
    graph = imports()
    # package-level graph: A -> B when any module of A imports one of B (inside-package edges dropped)
    pkg: dict[str, set[str]] = {}
    for mod, deps in graph.items():
        pkg.setdefault(top(mod), set()).update(top(d) for d in deps if top(d) != top(mod))
    for g in (graph, pkg):
        state: dict[str, int] = {}
        stack: list[str] = []

        def visit(n, g=g, state=state, stack=stack):
            state[n] = 1
            stack.append(n)
            for m in sorted(g.get(n, ())):
                if state.get(m) == 1:
                    raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(m):] + [m]))
                if m not in state:
                    visit(m)
            stack.pop()
            state[n] = 2

        for n in sorted(g):
            if n not in state:
                visit(n)


def test_no_private_name_imported_from_another_module():
    bad = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lslo"):
                for a in node.names:
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        bad.append(f"{module_name(path)}: from {node.module} import {a.name}")
    assert not bad, "\n".join(bad)


def test_the_rank_check_can_fail():
    """Core -> training, evaluation <-> reporting and library -> testbed are all flagged."""
    graph = {"lslo.tuner.model": {"lslo.training.trainer", "lslo.pruning.pruner"},
             "lslo.evaluation.tables": {"lslo.reporting.report"},
             "lslo.training.trainer": {"lslo.testbed.demo", "lslo.tuner.model"},
             "lslo.cli.train": {"lslo"}}
    assert violations(graph) == [
        "lslo.cli.train -> lslo (import from the subpackage, not the top-level API)",
        "lslo.evaluation.tables -> lslo.reporting.report",
        "lslo.training.trainer -> lslo.testbed.demo",
        "lslo.tuner.model -> lslo.training.trainer",
    ]
