"""A family added from outside the package, as a newcomer would: one folder (here a temporary
one put on the families package's path) and one line in the family list. The audit measures
it, the certificate carries it, the page gives it a section with its table, the summary its
clause, and the limitations its line: no other code knows it."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

import reportgen
from reportgen import families as family_list
from reportgen.core import names

FAMILY = '''
"""Embedding norms: how much longer or shorter the candidate's token embeddings are."""

from reportgen.core.family import Family, lazy
from reportgen.core.names import register

register("norms.embedding_ratio",
         "Mean over shared tokens of |E_candidate[t]| / |E_base[t]|.", unit="×")

FAMILY = Family(
    name="norms", title="Embedding norms", intro="How long each token's embedding is.",
    tables=("norms_tokens",), pair=lazy(f"{__name__}.pair", "analyse"),
    view=lazy(f"{__name__}.view", "view"), keywords=("embedding norm",),
    limitations=lambda ctx: ["Embedding norms are compared over shared tokens only."],
    summary=lambda comp: "embedding norm ratio "
        + str(comp["metrics"]["norms.embedding_ratio"]["value"]),
)
'''
PAIR = '''
import numpy as np

from reportgen.core.family import PairResult
from reportgen.core.names import definition
from reportgen.core.records import MetricValue


def analyse(ctx):
    b, c = ctx.base.embeddings, ctx.candidate.embeddings
    n = min(len(b), len(c))
    ratio = np.linalg.norm(c[:n], axis=1) / np.maximum(np.linalg.norm(b[:n], axis=1), 1e-12)
    value = float(ratio.mean())
    rows = [{"token": i, "ratio": float(ratio[i])} for i in range(3)]
    return PairResult({"norms.embedding_ratio": MetricValue(
        value, definition("norms.embedding_ratio"), "×")}, {"norms_tokens": rows})
'''
VIEW = '''
from reportgen.core.family import View
from reportgen.views.charts import comparisons, table
from reportgen.views.tables import Column, Table


def tables(data):
    rows = [r for c in comparisons(data) for r in table(c, "norms_tokens")]
    return {"_section": [Table("Norm ratios", [Column("token", "token", "int"),
                                               Column("ratio", "ratio", "num")], rows)]}, []


def view():
    return View(tables=tables)
'''


@pytest.fixture()
def norms_family(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = tmp_path / "norms"
    folder.mkdir()
    for name, text in (("__init__.py", FAMILY), ("pair.py", PAIR), ("view.py", VIEW)):
        (folder / name).write_text(textwrap.dedent(text))
    monkeypatch.setattr(family_list, "__path__", [*family_list.__path__, str(tmp_path)])
    monkeypatch.setattr(family_list, "ORDER", (*family_list.ORDER, "norms"))  # the one line
    family_list.families.cache_clear()
    names.registry()  # the built-in names first
    family_list.families()  # importing the list registers the new family's names
    yield
    family_list.families.cache_clear()
    names.REGISTRY.pop("norms.embedding_ratio", None)
    import sys

    for mod in [m for m in sys.modules if m.startswith("reportgen.families.norms")]:
        del sys.modules[mod]


def test_a_family_is_one_folder_and_one_line(norms_family, tiny_models, tmp_path: Path):
    from reportgen.views.html import render_html

    (tmp_path / "v.yaml").write_text(json.dumps({"a": ["cat", "dog", "bird", "mouse"]}))
    spec = {"audit": {"name": "plug-in", "created": "2026-01-01"},
            "models": {"base": {"path": str(tiny_models["tiny-gpt2"])},
                       "candidates": [{"name": "ft", "path": str(tiny_models["tiny-gpt2-ft"])}]},
            "probes": {"concepts": {"vocabulary": str(tmp_path / "v.yaml")}},
            "analysis": {"bootstrap": 0, "umap": False, "weights": False},
            "checks": [{"metric": "norms.embedding_ratio", "fail_if": "> 10"}]}
    cert = reportgen.audit(spec, progress=False)
    from transformers import AutoModel

    b = AutoModel.from_pretrained(tiny_models["tiny-gpt2"]).get_input_embeddings().weight
    c = AutoModel.from_pretrained(tiny_models["tiny-gpt2-ft"]).get_input_embeddings().weight
    want = float((c.norm(dim=1) / b.norm(dim=1)).mean())
    assert cert.metric("ft", "norms.embedding_ratio") == pytest.approx(want, rel=1e-5)
    assert [c["status"] for c in cert.checks] == ["PASS"]
    assert "Embedding norms are compared over shared tokens only." in cert.data["limitations"]
    assert "embedding norm ratio" in cert.summary()
    page = render_html(cert)
    assert 'id="family-norms"' in page and "Norm ratios" in page
    assert np.isfinite(cert.comparison("ft")["tables"]["norms_tokens"][0]["ratio"])
