"""The folders are the architecture: imports run down the layers, never in a circle, no command imports another.

Every `import` counts, the ones inside functions (lazy imports) too, and so does a module named by a string
(`"pipelines.run"` in the command table: imported by name when the command runs). The layer
order is the one docs/design.md states.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import ROOT

# Lowest first; a module may import its own layer and the layers before it.
LAYERS = [
    ("core", {"stages", "stages.errors", "stages.config", "stages.progress", "stages.reward_record"}),
    ("artifacts", {"stages.artifacts"}),
    ("models", {"stages.models"}),
    ("method", {"stages.method"}),
    ("verify", {"stages.verify"}),
    ("sources", {"stages.sources"}),
    ("training", {"stages.training"}),
    ("engines", {"stages.engines"}),
    ("commands", {"stages.commands"}),
    ("pipelines", {"stages.pipelines"}),
    ("cli", {"rltcli"}),
]


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    best = None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > best[1]):
                best = (i, len(p))
    assert best is not None, f"{module} belongs to no layer"
    return best[0]


def _imports(path: Path) -> set[str]:
    """Project modules `path` imports (`from stages import x` names the sub-module when x is one)."""
    out = set()
    tree = ast.parse(path.read_text())
    loggers = {id(a) for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", None) ==
               "getLogger" for a in n.args}  # a logger named after a module is no import
    for node in ast.walk(tree):
        if id(node) in loggers:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                out.add(sub if sub in MODULES else node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.update(_named_module(node.value))
    return {m for m in out if m.split(".")[0] in ("stages", "rltcli")}


def _named_module(text: str) -> set[str]:
    """The module a string names, an import done by name at run time (`importlib.import_module`): a dotted
    module path, whole (`stages.pipelines.run`) or below stages/ as the command table writes it
    (`pipelines.run`)."""
    if "." not in text or not re.fullmatch(r"[a-z_][a-z0-9_.]*", text):
        return set()
    return {m for m in (text, f"stages.{text}") if m in MODULES}


FILES = [p for d in ("stages", "rltcli") for p in (ROOT / d).rglob("*.py")]
MODULES = {_module(p) for p in FILES}
GRAPH = {_module(p): _imports(p) - {_module(p)} for p in FILES}


def test_no_import_runs_up_a_layer():
    upward = [f"{m} ({LAYERS[_layer(m)][0]}) imports {d} ({LAYERS[_layer(d)][0]})"
              for m, deps in GRAPH.items() for d in deps if _layer(d) > _layer(m)]
    assert not upward, "\n".join(upward)


def test_no_command_imports_another_command():
    table = "stages.commands"
    crossing = [f"{m} imports {d}" for m, deps in GRAPH.items() if m.startswith(table + ".")
                for d in deps if d.startswith(table + ".")]
    assert not crossing, "\n".join(crossing)


def test_no_import_circle():
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: list[str] = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(GRAPH[m] & GRAPH.keys()):
            if state.get(d) == 1:
                cycles.append(" -> ".join([*path[path.index(d):], d]))
            elif d not in state:
                visit(d, [*path, d])
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m, [m])
    assert not cycles, "\n".join(cycles)
