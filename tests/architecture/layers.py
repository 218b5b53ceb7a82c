"""The layering rule, read from the source with ``ast``: stages import only earlier stages.

Every ``import`` counts, at module top or inside a function (a lazy import is still a
dependency), except under ``if TYPE_CHECKING:``. ``reportgen.core`` imports nothing of ours; a
family imports core, the SAE library, spec and capture, and other families only through their
``metrics``/``pair`` modules declared in :data:`FAMILY_SHARED`.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "reportgen"
STAGES = ("core", "sae", "spec", "capture", "families", "analysis", "certificate", "views",
          "release", "top")
TOP = {"pipeline", "api", "cli", "__init__", "__main__"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def stage(module: str) -> str:
    """A module's stage: its top folder; a family's page code (``families/<name>/view*.py``)
    belongs to the views stage, which loads it, lazily, through the family's ``view``."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in TOP:
        return "top"
    if parts[1] == "families" and len(parts) > 3 and parts[3].startswith("view"):
        return "views"
    return parts[1]


def _type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported reportgen module or module.name) for every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name) for a in node.names if a.name.startswith("reportgen"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.startswith("reportgen"):
            out.extend((node.lineno, f"{node.module}.{a.name}") for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def resolve(target: str, modules: set[str]) -> str:
    """The module ``target`` names: itself, or its parent when it names an attribute."""
    return target if target in modules else target.rsplit(".", 1)[0]


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def violations() -> list[str]:
    mods = modules()
    names = set(mods)
    out = []
    for mod, path in sorted(mods.items()):
        here = STAGES.index(stage(mod))
        for line, target in imports(path):
            dep = resolve(target, names)
            there = STAGES.index(stage(dep))
            rel = path.relative_to(PACKAGE.parent)
            if there > here:
                out.append(f"{rel}:{line}: {stage(mod)} imports a later stage: {dep}")
            elif stage(mod) == "core" and dep.split(".")[1] != "core" and dep != "reportgen":
                out.append(f"{rel}:{line}: core imports {dep}")
            elif stage(mod) == "families" == stage(dep):
                mine, theirs = mod.split(".")[2:3], dep.split(".")[2:3]
                if mine != theirs and dep != "reportgen.families" and \
                        dep.split(".")[-1] not in FAMILY_SHARED:
                    out.append(f"{rel}:{line}: family {mine[0]} reaches into {dep}")
    return out


#: modules of a family that another family may import (its metric functions, its alignment)
FAMILY_SHARED = ("metrics", "shared")


def cycles() -> list[list[str]]:
    """Import cycles among modules (every import, lazy ones too)."""
    mods = modules()
    names = set(mods)
    graph = {m: sorted({resolve(t, names) for _, t in imports(p)} - {m}) for m, p in mods.items()}
    graph = {m: [d for d in ds if d in names and not _is_package_of(d, m)]
             for m, ds in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def _is_package_of(pkg: str, mod: str) -> bool:
    """A module importing its own package's ``__init__`` (``from reportgen import x``)."""
    return mod.startswith(pkg + ".")


if __name__ == "__main__":
    for v in violations():
        print(v)
    for c in cycles():
        print("cycle:", " -> ".join(c))
