"""Load an audit spec (YAML file, dict or AuditSpec) and report every problem in it at once.

A user fixing a spec should see all of its mistakes in one run, each as
``file:line: field: message`` saying what was expected and what arrived. So the YAML is read
as a node tree (to keep line numbers), pydantic's errors are translated into plain words, and
the cross-field checks (names, metrics, conditions, the vocabulary) run on the raw data, so
they still run when pydantic rejected something elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reportgen.core.errors import Problem, SpecError
from reportgen.spec.messages import Ctx, describe, pydantic_problems
from reportgen.spec.semantics import semantic_problems
from reportgen.spec.series import expand_spec, without_unused
from reportgen.spec.types import AuditSpec
from reportgen.spec.yamlsrc import YamlDoc, read_text_file, read_yaml


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec with what later stages need to resolve paths and cite it."""

    spec: AuditSpec
    file: str
    base_dir: Path
    digest: str
    normalised: dict
    facts: Any = None  # preflight.ModelFacts when the models were checked too
    series: tuple = ()  # spec.series.Series: each series candidate, its steps' candidate names




# ---------------------------------------------------------------------------------------------
# Paths








# ---------------------------------------------------------------------------------------------
# Reading YAML with line numbers





















# ---------------------------------------------------------------------------------------------
# Loading and validating


def load_spec(source: str | os.PathLike[str] | dict | AuditSpec,
              models: bool = False) -> LoadedSpec:
    """Load and validate a spec; raise SpecError listing every problem, sorted by line.

    ``models``: also read each model's config.json and tokenizer (never its weights) and
    report what they rule out (:mod:`reportgen.spec.preflight`); ``facts`` then holds what they
    said. """
    if isinstance(source, AuditSpec):
        source = source.model_dump(by_alias=True)
    if isinstance(source, dict):
        return _validate(source, YamlDoc(data=source), "<dict>", Path.cwd(), models)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"load_spec expects a path, a dict or an AuditSpec, not {type(source)}")
    file = str(source)
    path = Path(source)
    doc = read_yaml(read_text_file(path, file, "spec file"), file)
    if not doc.ok:
        raise SpecError(doc.problems)
    required = ", ".join(n for n, f in AuditSpec.model_fields.items() if f.is_required())
    if doc.data is None:
        raise SpecError([Problem(
            file, None, "", f"the spec file is empty; expected a mapping with the keys {required}"
        )])
    if not isinstance(doc.data, dict):
        raise SpecError([Problem(
            file, doc.lines.get(()), "",
            f"expected a mapping with the keys {required}, got {describe(doc.data)}",
        )])
    return _validate(doc.data, doc, file, path.absolute().parent, models)


def _validate(raw: dict, doc: YamlDoc, file: str, base_dir: Path, models: bool) -> LoadedSpec:
    ctx = Ctx(file, doc.lines, doc.texts, base_dir)
    spec: AuditSpec | None = None
    typed: list[Problem] = []
    try:
        spec = AuditSpec.model_validate(raw)
    except ValidationError as e:
        typed = pydantic_problems(e, raw, ctx)
    semantic, facts = semantic_problems(raw, ctx, models)
    claimed = {p.field for p in semantic}
    problems = doc.problems + [p for p in typed if p.field not in claimed] + semantic
    if problems or spec is None:
        raise SpecError(ctx.sort(list(dict.fromkeys(problems)), raw))
    normalised = without_unused(spec.model_dump(mode="json", by_alias=True))
    if facts is not None:
        spec = facts.apply(spec)
    spec, series = expand_spec(spec, base_dir)
    return LoadedSpec(spec, file, base_dir, spec_digest(normalised), normalised, facts, series)


def spec_digest(normalised: dict) -> str:
    """sha256 of canonical JSON, so key order and YAML formatting do not change it."""
    blob = json.dumps(normalised, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------
# Locating problems and describing values














# ---------------------------------------------------------------------------------------------
# pydantic errors in plain words




















# ---------------------------------------------------------------------------------------------
# Checks across fields, on the raw data so they run even where pydantic failed elsewhere


























