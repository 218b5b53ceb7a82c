"""What a spec means, checked past its types: model names and derivations, checks against the
metrics this spec will compute, layers, and the probe files it names (every problem at once)."""

from __future__ import annotations

from typing import Any

from reportgen.core.errors import InputError, InputErrors, Problem
from reportgen.core.names import lookup, unknown_metric_message
from reportgen.spec.conditions import parse_condition
from reportgen.spec.messages import Ctx, describe, did_you_mean
from reportgen.spec.metricnames import check_metric_names, known_from_spec
from reportgen.spec.series import entry_problems, is_series, step_names
from reportgen.spec.serieschecks import check_series_checks
from reportgen.spec.yamlsrc import Path_


def semantic_problems(raw: dict, ctx: Ctx, models: bool) -> tuple[list[Problem], Any]:
    """The problems across fields, and (with ``models``) what the models' configs said."""
    out: list[Problem] = []
    entries = raw.get("models")
    candidates = _check_models(entries if isinstance(entries, dict) else {}, ctx, out)
    _check_checks(raw.get("checks"), candidates, ctx, out)
    check_series_checks(raw, ctx, out)
    _check_layers(raw.get("analysis"), ctx, out)
    concepts = _check_vocabulary(raw.get("probes"), ctx, out)
    _check_probe_files(raw.get("probes"), ctx, out)
    facts = None
    if models:
        from reportgen.spec.preflight import (
            check_models,  # reads configs and tokenizers: only when asked
        )

        facts = check_models(raw, concepts, ctx, out)
    categories = None if concepts is None else list(dict.fromkeys(c.category for c in concepts))
    known = known_from_spec(raw, categories, facts.n_layers if facts else None)
    check_metric_names(raw, known, ctx.problem, out)
    return out, facts

def _mappings(items: Any) -> list[tuple[int, dict]]:
    """The (index, item) pairs of a list that are mappings; anything else pydantic reports."""
    return [(i, x) for i, x in enumerate(items) if isinstance(x, dict)] if isinstance(
        items, list) else []

def _check_models(models: dict, ctx: Ctx, out: list[Problem]) -> list[str] | None:
    """Unique candidate names, each with exactly one source; the names (None: unreadable)."""
    at = ("models", "candidates")
    if not isinstance(models.get("candidates"), list):
        return None
    candidates = _mappings(models.get("candidates"))
    names: dict[str, int] = {}
    for i, c in candidates:
        name = c.get("name")
        if not isinstance(name, str):
            continue
        if name == "base":
            out.append(ctx.problem((*at, i, "name"),
                                   "'base' is the name of the base model; choose another name"))
        elif not name.strip():
            out.append(ctx.problem((*at, i, "name"), "expected a name, got an empty string"))
        elif name in names:
            out.append(ctx.problem((*at, i, "name"), f"duplicate model name {name!r}; "
                                   f"models.candidates[{names[name]}] already uses it"))
        else:
            names[name] = i
    steps = step_names(models.get("candidates"), ctx.base_dir)
    for i, c in candidates:
        clash = [s for s in steps if s in names and s.rpartition("@")[0] == c.get("name")]
        if is_series(c) and clash:
            out.append(ctx.problem((*at, i, "name"), f"step {clash[0]!r} of this series has the "
                                   f"name of models.candidates[{names[clash[0]]}]; rename one"))
        _check_source((*at, i), c, ["base", *names, *steps], ctx, out)
        if is_series(c):
            out.extend(ctx.problem(p, m) for p, m in entry_problems(c, (*at, i), ctx.base_dir))
    _check_derive_loops(candidates, names, ctx, out)
    if candidates and all(c.get("role") == "noise_floor" for _, c in candidates):
        out.append(ctx.problem(at, "every candidate is a noise floor; "
                                   "expected at least one with role: candidate"))
    return [*names, *steps]

def _check_source(at: Path_, c: dict, known: list[str], ctx: Ctx, out: list[Problem]) -> None:
    """A candidate comes from exactly one of a path and a derivation of a known model."""
    has_path, derive = c.get("path") is not None, c.get("derive")
    if is_series(c):
        pass  # a series' path is what its adapters apply to; entry_problems says the rest
    elif has_path and derive is not None:
        out.append(ctx.problem(at, "has both path and derive; expected exactly one of them"))
    elif not has_path and derive is None:
        out.append(ctx.problem(at, "has neither path nor derive; expected exactly one of them"))
    source = derive.get("from") if isinstance(derive, dict) else None
    if not isinstance(source, str):
        return
    if source == c.get("name"):
        out.append(ctx.problem((*at, "derive", "from"), "a model cannot derive from itself"))
    elif source not in known:
        out.append(ctx.problem((*at, "derive", "from"),
                               f"unknown model {source!r}." + did_you_mean(source, known)))

def _check_derive_loops(candidates: list[tuple[int, dict]], names: dict[str, int], ctx: Ctx,
                        out: list[Problem]) -> None:
    """a derives from b derives from a: nothing to start from. Reported once per loop."""
    parent = {}
    for _, c in candidates:
        derive = c.get("derive")
        source = derive.get("from") if isinstance(derive, dict) else None
        if isinstance(c.get("name"), str) and isinstance(source, str) and source != c["name"]:
            parent[c["name"]] = source
    for name, i in names.items():
        chain = [name]
        while chain[-1] in parent and parent[chain[-1]] not in chain:
            chain.append(parent[chain[-1]])
        loops = parent.get(chain[-1]) == name
        if loops and i == min(names.get(n, i) for n in chain):
            out.append(ctx.problem(("models", "candidates", i, "derive", "from"),
                                   "derivations form a loop: " + " -> ".join([*chain, name])))

def _check_checks(checks: Any, candidates: list[str] | None, ctx: Ctx, out: list[Problem]) -> None:
    """Known metric and candidate, parseable conditions, no two checks with the same id."""
    seen: list[tuple[str, str | None, int]] = []
    for i, chk in _mappings(checks):
        at = ("checks", i)
        metric, candidate = chk.get("metric"), chk.get("candidate")
        if isinstance(metric, str) and lookup(metric) is None:
            out.append(ctx.problem((*at, "metric"), unknown_metric_message(metric)))
        if isinstance(candidate, str) and candidates is not None and candidate not in candidates:
            out.append(ctx.problem((*at, "candidate"), _unknown_candidate(candidate, candidates)))
        _check_conditions(at, chk, ctx, out)
        _check_duplicate(at, chk, seen, ctx, out)

def _unknown_candidate(name: str, candidates: list[str]) -> str:
    if name == "base":
        return ("'base' is the base model, not a candidate; each check compares a candidate "
                f"with it. Known: {', '.join(candidates) or '(none)'}")
    return f"unknown candidate {name!r}." + did_you_mean(name, candidates)

def _check_conditions(at: Path_, chk: dict, ctx: Ctx, out: list[Problem]) -> None:
    conditions = {key: chk.get(key) for key in ("fail_if", "warn_if")}
    if all(v is None for v in conditions.values()):
        out.append(ctx.problem(at, "has neither fail_if nor warn_if; "
                                   "expected at least one condition"))
    for key, value in conditions.items():
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            text = value if isinstance(value, str) else ctx.texts.get((*at, key)) or str(value)
            try:
                parse_condition(text)
            except ValueError as e:
                out.append(ctx.problem((*at, key), str(e)))

def _check_duplicate(at: Path_, chk: dict, seen: list[tuple[str, str | None, int]], ctx: Ctx,
                     out: list[Problem]) -> None:
    """Two checks may share an id (default: the metric) only if they name other candidates."""
    given, metric, candidate = chk.get("id"), chk.get("metric"), chk.get("candidate")
    check_id = given if isinstance(given, str) else metric if isinstance(metric, str) else None
    if check_id is None:
        return
    scope = candidate if isinstance(candidate, str) else None
    for other_id, other_scope, j in seen:
        if other_id == check_id and (None in (scope, other_scope) or scope == other_scope):
            if isinstance(given, str):
                out.append(ctx.problem((*at, "id"), f"duplicate check id {check_id!r}; "
                                                    f"checks[{j}] already uses it"))
            else:
                out.append(ctx.problem(at, f"duplicate check: checks[{j}] already checks "
                                           f"{check_id!r} on the same candidates; "
                                           "give one of them an id"))
            break
    seen.append((check_id, scope, at[1]))

def _check_layers(analysis: Any, ctx: Ctx, out: list[Problem]) -> None:
    """analysis.layers: non-negative indices, each once (pydantic accepts -1 and true)."""
    layers = analysis.get("layers") if isinstance(analysis, dict) else None
    at = ("analysis", "layers")
    if not isinstance(layers, list):
        return
    if not layers:
        out.append(ctx.problem(at, "expected 'all' or at least one layer index, "
                                   "got an empty list"))
    seen: set[int] = set()
    for j, v in enumerate(layers):
        if isinstance(v, bool):
            got = describe(v, ctx.texts.get((*at, j)))
            out.append(ctx.problem((*at, j), f"expected a layer index (a whole number), got {got}"))
        elif isinstance(v, int) and v < 0:
            out.append(ctx.problem((*at, j), f"expected a layer index >= 0, got {v}"))
        elif isinstance(v, int) and v in seen:
            out.append(ctx.problem((*at, j), f"layer {v} is listed twice"))
        elif isinstance(v, int):
            seen.add(v)

def _check_vocabulary(probes: Any, ctx: Ctx, out: list[Problem]) -> list | None:
    """The vocabulary must load now, not after the models have been hashed: every problem of
    it at once. Its concepts; [] without probes.concepts; None when they cannot be read."""
    concepts = probes.get("concepts") if isinstance(probes, dict) else None
    ref = concepts.get("vocabulary") if isinstance(concepts, dict) else None
    if not isinstance(ref, str):
        return None if isinstance(concepts, dict) else []
    from reportgen.spec.probes import (
        load_vocabulary,  # probes imports this module's readers: import late
    )

    try:
        return load_vocabulary(ref, ctx.base_dir, field="")
    except InputError as e:
        _file_problems(("probes", "concepts", "vocabulary"), e, ctx, out)
    return None

def _file_problems(at: Path_, e: InputError, ctx: Ctx, out: list[Problem]) -> None:
    """Each problem of a probe file, located at the spec entry that names it."""
    out.extend(ctx.problem(at, m) for m in (e.messages if isinstance(e, InputErrors)
                                            else [str(e)]))

def _check_probe_files(probes: Any, ctx: Ctx, out: list[Problem]) -> None:
    """Domain texts and risk packs load now too: every bad line is named before any model
    is hashed."""
    from reportgen.spec.probes import load_risk_prompts, load_texts

    for key, ref_key in (("domains", "texts"), ("risk", "prompts")):
        items = probes.get(key) if isinstance(probes, dict) else None
        for i, r in enumerate(items if isinstance(items, list) else []):
            ref = r.get(ref_key) if isinstance(r, dict) else None
            if not isinstance(ref, str):
                continue
            name = r.get("name") if isinstance(r.get("name"), str) else key
            try:
                if key == "risk":
                    load_risk_prompts(ref, ctx.base_dir, name, field="")
                else:
                    load_texts(ref, ctx.base_dir, field="")
            except InputError as e:
                _file_problems(("probes", key, i, ref_key), e, ctx, out)
