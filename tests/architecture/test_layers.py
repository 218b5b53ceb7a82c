"""The architecture as tests: stages import only earlier stages, no cycles, small modules,
model libraries only where models run, and a family is one folder plus one line."""

from __future__ import annotations

import ast
from pathlib import Path

from layers import PACKAGE, cycles, imports, modules, stage, violations

HEAVY = ("torch", "transformers", "peft", "accelerate")
LATE = ("analysis", "certificate", "views", "release")


def test_no_stage_imports_a_later_stage() -> None:
    assert violations() == []


def test_no_import_cycles() -> None:
    assert cycles() == []


def test_the_rule_sees_a_violation(tmp_path: Path) -> None:
    """The checker is not vacuous: a core module importing a family is named."""
    assert stage("reportgen.core.errors") == "core"
    assert stage("reportgen.families.sae.view") == "views"  # a family's page code
    assert stage("reportgen.pipeline") == "top"
    bad = tmp_path / "bad.py"
    bad.write_text("import reportgen.families\n\ndef f():\n    from reportgen.views import html\n")
    assert imports(bad) == [(1, "reportgen.families"), (4, "reportgen.views.html")]


def _top_level_imports(path: Path) -> set[str]:
    out = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def _all_imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def test_metric_code_and_core_never_import_torch_at_module_top() -> None:
    bad = [str(p.relative_to(PACKAGE)) for m, p in modules().items()
           if (m.endswith(".metrics") or stage(m) == "core" or m.endswith(".names"))
           and _top_level_imports(p) & set(HEAVY)]
    assert bad == []


def test_nothing_after_the_families_loads_a_model_library() -> None:
    """Models load and run in capture (and the families' collectors it calls); the analysis,
    the certificate, the views and the release read captures and JSON only."""
    bad = [str(p.relative_to(PACKAGE)) for m, p in modules().items()
           if stage(m) in LATE and _all_imports(p) & set(HEAVY)]
    assert bad == []


def test_every_module_stays_under_400_lines() -> None:
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}


def test_projection_is_named_only_in_its_folder_and_the_family_list() -> None:
    """The proof that the protocol is enough: the UMAP projection is a family that no code
    outside its folder names, but for its line in families.ORDER."""
    outside = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("families/projection/"):
            continue
        text = path.read_text(encoding="utf-8")
        if "projection" in text.lower():
            lines = [n for n, line in enumerate(text.splitlines(), 1)
                     if "projection" in line.lower()]
            outside.append((rel, lines))
    assert outside == [("families/__init__.py", [25])]


def test_the_architecture_page_names_what_exists() -> None:
    """docs/ARCHITECTURE.md stays true: every path it names exists, and its stage table lists
    every stage folder."""
    import re

    repo = PACKAGE.parent
    text = (repo / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    named = {m for m in re.findall(r"`([\w./<>-]+)`", text) if "/" in m and "<" not in m}
    missing = [p for p in sorted(named)
               if not ((repo / p).exists() or (PACKAGE / p).exists())]
    assert missing == []
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert {f"{f}/" for f in folders} <= named | {"cli/"}
