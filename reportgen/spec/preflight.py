"""What a spec's models allow, read from their folders before any weight loads.

``reportgen validate`` and an audit (before it hashes anything) read each model's
``config.json`` and tokenizer files, never its weights, and report at once: folders and adapters
that are not there, configs that cannot be compared, families the model kind cannot run,
layers and lengths beyond the model, and probe terms its tokenizer cannot read. Each problem
is located in the spec like every other (``file:line: field: message``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reportgen.core.errors import InputError, Problem
from reportgen.core.names import lookup
from reportgen.spec.chat import ChatTemplate, choose, differences
from reportgen.spec.resolve import (
    check_adapter,
    check_remote_code,
    check_weights,
    detect_kind,
    incompatibilities,
    locate,
    model_shape,
    read_config,
)
from reportgen.spec.types import Analysis, AuditSpec, ConceptProbes

if TYPE_CHECKING:
    from reportgen.spec.messages import Ctx

Path_ = tuple[Any, ...]
_UNSET_LENGTH = 1_000_000  # tokenizers without a limit say int(1e30)
_HEAD_FAMILIES = ("probabilities", "behavior")


@dataclass(frozen=True)
class ModelFacts:
    """What the configs said, for the stages after validation."""

    n_layers: int | None  # the base's transformer blocks
    max_length: int | None  # analysis.max_length to use: the default capped at the models'
    warnings: tuple[str, ...] = ()
    chat: ChatTemplate | None = None  # renders the risk prompts (probes.chat_template)
    models: tuple[ModelRead, ...] = ()  # the folders read, base first (``reportgen plan``)

    def apply(self, spec: AuditSpec) -> AuditSpec:
        """``spec`` with the capped max_length (the spec's digest still names what was written)."""
        if self.max_length is None:
            return spec
        analysis = spec.analysis.model_copy(update={"max_length": self.max_length})
        return spec.model_copy(update={"analysis": analysis})


@dataclass
class ModelRead:
    """One model folder as far as validation reads it: where, its config and its kind."""

    name: str
    at: Path_  # ('models', 'base') or ('models', 'candidates', i)
    source: str
    folder: Path
    config: dict[str, Any]
    kind: str
    architecture: str
    trust_remote_code: bool = False
    limits: list[tuple[int, str]] = field(default_factory=list)  # (positions, where it says)


def check_models(raw: dict, concepts: list | None, ctx: Ctx, out: list[Problem]) -> ModelFacts:
    """Every problem the models' configs and tokenizers show, appended to ``out``."""
    entries = _entries(raw, ctx.base_dir)
    reads = [m for m in (_read(name, at, e, ctx, out) for name, at, e in entries) if m]
    base = next((m for m in reads if m.at == ("models", "base")), None)
    n_layers = None
    if base is not None:
        _check_comparable(base, reads, ctx, out)
        n_layers = model_shape(base.config)[1] or None
    _check_head(raw, _kinds(entries, reads), reads, ctx, out)
    if n_layers is not None:
        _check_layers(raw, n_layers, ctx, out)
    context, why = _context(reads)
    max_length, warnings = _check_max_length(raw, context, why, ctx, out)
    if concepts:
        from reportgen.spec.termcheck import unreadable_terms

        for at, message in unreadable_terms(concepts, _template(raw), reads):
            out.append(ctx.problem(at, message))
    chat = choose(raw, reads, ctx, out)
    warnings = [*warnings, *differences(chat, reads)]
    return ModelFacts(n_layers, max_length, tuple(warnings), chat, tuple(reads))


def _check_comparable(base: ModelRead, reads: list[ModelRead], ctx: Ctx,
                      out: list[Problem]) -> None:
    """Each candidate shares the base's architecture and shape (models.incompatibilities)."""
    for m in reads:
        diffs = [] if m is base else incompatibilities(base.architecture, base.config,
                                                       m.architecture, m.config)
        if diffs:
            out.append(ctx.problem(_path_at(m.at), f"{m.name!r} cannot be compared with the "
                                                    "base: " + "; ".join(diffs)))


def _entries(raw: dict, base_dir: Path) -> list[tuple[str, Path_, dict]]:
    """(name, key path, entry) for the base and each candidate given as a mapping; a series
    gives one per step (spec.series)."""
    from reportgen.spec.series import expand_raw

    models = raw.get("models") if isinstance(raw.get("models"), dict) else {}
    out = []
    if isinstance(models.get("base"), dict):
        out.append(("base", ("models", "base"), models["base"]))
    cands = models.get("candidates")
    return out + expand_raw(cands if isinstance(cands, list) else [], base_dir)


def _read(name: str, at: Path_, entry: dict, ctx: Ctx, out: list[Problem]) -> ModelRead | None:
    """Locate the folder and read its config; check weights are there and the adapter."""
    from reportgen.spec.yamlsrc import field_name

    source = entry.get("path")
    if entry.get("derive") is not None or not isinstance(source, str):
        return None
    prefix = field_name(at)
    fields = {f"{prefix}.{k}": _path_at(at, k) for k in ("path", "adapter", "trust_remote_code")}
    trust = entry.get("trust_remote_code") is True
    pickle = entry.get("allow_pickle") is True
    try:
        folder = locate(source, ctx.base_dir, f"{prefix}.path")
        config = read_config(folder, f"{prefix}.path", source)
    except InputError as e:
        out.append(_located(e, fields, _path_at(at), ctx))
        return None
    for step in (lambda: check_remote_code(config, name, prefix, source, trust),
                 lambda: check_weights(folder, f"{prefix}.path", source, pickle,
                                       f"{prefix}.allow_pickle"),
                 lambda: _adapter(entry, ctx, f"{prefix}.adapter", pickle)):
        try:
            step()
        except InputError as e:
            out.append(_located(e, fields, _path_at(at), ctx))
    kind, arch = detect_kind(config)
    return ModelRead(name, at, source, folder, config, kind, arch, trust, _limits(folder, config))


def _path_at(at: Path_, key: str = "path") -> Path_:
    """Where a model's ``key`` is written; a globbed series step: at its ``series``."""
    return at if at[-1] == "series" else (*at, key)


def _adapter(entry: dict, ctx: Ctx, field: str, pickle: bool) -> None:
    if isinstance(entry.get("adapter"), str):
        check_adapter(entry["adapter"], ctx.base_dir, field, pickle,
                      field.removesuffix(".adapter") + ".allow_pickle")


def _located(e: InputError, fields: dict[str, Path_], default: Path_, ctx: Ctx) -> Problem:
    """A models.py error ('FIELD: message') as a spec problem at that field."""
    text = str(e)
    for name, at in fields.items():
        if text.startswith(name + ": "):
            return ctx.problem(at, text[len(name) + 2:])
    return ctx.problem(default, text)


def _kinds(entries: list[tuple[str, Path_, dict]], reads: list[ModelRead]) -> dict[str, str]:
    """Each model's kind; a derived variant has its source's."""
    kinds = {m.name: m.kind for m in reads}
    parents = {name: e["derive"].get("from") for name, _, e in entries
               if isinstance(e.get("derive"), dict)}
    for name in parents:
        seen, at = {name}, parents[name]
        while at in parents and at not in seen:
            seen.add(at)
            at = parents[at]
        if at in kinds:
            kinds[name] = kinds[at]
    return kinds


def _check_head(raw: dict, kinds: dict[str, str], reads: list[ModelRead], ctx: Ctx,
                out: list[Problem]) -> None:
    """Risk probes and token-probability checks need a language-model head."""
    headless = [n for n, k in kinds.items() if k == "encoder"]
    if not headless:
        return
    m = next(r for r in reads if r.kind == "encoder")
    who = (f"{_names(headless)} {'has' if len(headless) == 1 else 'have'} none "
           f"({m.architecture} is an encoder without one)")
    probes = raw.get("probes") if isinstance(raw.get("probes"), dict) else {}
    if probes.get("risk"):
        out.append(ctx.problem(("probes", "risk"), "risk probes are scored through a "
                               f"language-model head, and {who}; use checkpoints with their "
                               "head (…ForCausalLM or …ForMaskedLM) or remove probes.risk"))
    claimed = {p.field for p in out}
    checks = raw.get("checks") if isinstance(raw.get("checks"), list) else []
    for i, chk in enumerate(checks):
        metric = chk.get("metric") if isinstance(chk, dict) else None
        info = lookup(metric) if isinstance(metric, str) else None
        if info is not None and info.family in _HEAD_FAMILIES and \
                f"checks[{i}].metric" not in claimed:
            out.append(ctx.problem(("checks", i, "metric"), f"{metric!r} is read from token "
                                   f"probabilities, which need a language-model head, and {who}"))


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _check_layers(raw: dict, n_layers: int, ctx: Ctx, out: list[Problem]) -> None:
    """analysis.layers and analysis.sae layers within the base's 0..n_layers."""
    analysis = raw.get("analysis") if isinstance(raw.get("analysis"), dict) else {}
    layers = analysis.get("layers")
    found = [(("analysis", "layers", j), v) for j, v in
             enumerate(layers if isinstance(layers, list) else [])]
    sae = analysis.get("sae")
    found += [(("analysis", "sae", i, "layer"), s.get("layer")) for i, s in
              enumerate(sae if isinstance(sae, list) else []) if isinstance(s, dict)]
    for at, v in found:
        if isinstance(v, int) and not isinstance(v, bool) and v > n_layers:
            out.append(ctx.problem(at, f"layer {v} is out of range; base has layers "
                                       f"0..{n_layers}"))


def _limits(folder: Path, config: dict[str, Any]) -> list[tuple[int, str]]:
    """How many positions the model reads, as its config and tokenizer say."""
    out = []
    for key in ("n_positions", "max_position_embeddings"):
        v = config.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            out.append((v, f"{key} in its config.json"))
            break
    try:
        tok = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        tok = {}
    v = tok.get("model_max_length") if isinstance(tok, dict) else None
    if isinstance(v, int) and not isinstance(v, bool) and 0 < v < _UNSET_LENGTH:
        out.append((v, "model_max_length in its tokenizer_config.json"))
    return out


def _context(models: list[ModelRead]) -> tuple[int | None, str]:
    """The fewest positions any model reads, and who says so."""
    found = [(v, f"{m.name} can read ({where})") for m in models for v, where in m.limits]
    return min(found, key=lambda f: f[0]) if found else (None, "")


def _check_max_length(raw: dict, context: int | None, why: str, ctx: Ctx,
                      out: list[Problem]) -> tuple[int | None, list[str]]:
    """An explicit max_length beyond the context is refused; the default is capped."""
    analysis = raw.get("analysis") if isinstance(raw.get("analysis"), dict) else {}
    default = Analysis.model_fields["max_length"].default
    value = analysis.get("max_length", default)
    if context is None or not isinstance(value, int) or isinstance(value, bool) \
            or value <= context:
        return None, []
    if "max_length" in analysis:
        out.append(ctx.problem(("analysis", "max_length"),
                               f"expected at most {context}, the positions {why}; got {value}"))
        return None, []
    return context, [f"analysis.max_length: the default {value} is more than the {context} "
                     f"positions {why}; probe texts are truncated to {context} tokens."]


def _template(raw: dict) -> str:
    probes = raw.get("probes") if isinstance(raw.get("probes"), dict) else {}
    concepts = probes.get("concepts") if isinstance(probes.get("concepts"), dict) else {}
    template = concepts.get("template")
    if isinstance(template, str) and "{term}" in template:
        return template
    return ConceptProbes.model_fields["template"].default
