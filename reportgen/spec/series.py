"""A candidate that is a series: the checkpoints of one training run, audited step by step.

A series is written either as a glob of folders whose names end in the step number (what a
Hugging Face ``Trainer`` leaves: ``checkpoint-500/``, ``checkpoint-1000/``) or as an explicit
list of ``{step, path, adapter}``. With a ``path`` on the candidate itself, the glob's folders
are PEFT adapters applied over that model (a LoRA run's checkpoints); in a list, a step without
a path uses the candidate's. Each step becomes an ordinary candidate named ``NAME@STEP``, so
it is hashed, captured, cached and compared like any other; :class:`Series` remembers which.
"""

from __future__ import annotations

import glob as globlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reportgen.core.errors import InputError
from reportgen.spec.yamlsrc import Path_, expand_vars

_STEP = re.compile(r"(\d+)$")


@dataclass(frozen=True)
class Step:
    """One checkpoint of a series, as the spec names it (paths as written, not resolved)."""

    step: int
    path: str | None
    adapter: str | None
    at: Path_  # where the spec writes it, for messages


@dataclass(frozen=True)
class Series:
    """A series after loading: its name and each step's candidate name, in step order."""

    name: str
    steps: tuple[tuple[int, str], ...]

    @property
    def final(self) -> tuple[int, str]:
        return self.steps[-1]


def step_name(series: str, step: int) -> str:
    return f"{series}@{step}"


def is_series(entry: Any) -> bool:
    return isinstance(entry, dict) and entry.get("series") is not None


def steps_of(entry: dict, at: Path_, base_dir: Path) -> tuple[list[Step], list[tuple[Path_, str]]]:
    """The steps of one series entry in step order, and the problems found (located)."""
    spec = entry.get("series")
    own_path = entry.get("path") if isinstance(entry.get("path"), str) else None
    adapter = entry.get("adapter") if isinstance(entry.get("adapter"), str) else None
    problems: list[tuple[Path_, str]] = []
    if isinstance(spec, str):
        steps = _glob_steps(spec, own_path, adapter, (*at, "series"), base_dir, problems)
    elif isinstance(spec, list):
        steps = _list_steps(spec, own_path, adapter, (*at, "series"), problems)
    else:
        return [], []  # pydantic names the wrong type
    seen: dict[int, Step] = {}
    for s in steps:
        if s.step in seen:
            first = seen[s.step]
            where = _where(first)
            problems.append((s.at, f"duplicate step {s.step}; {where} already has it"))
        else:
            seen[s.step] = s
    if spec == []:
        problems.append(((*at, "series"), "expected at least one checkpoint, got an empty list"))
    return sorted(seen.values(), key=lambda s: s.step), problems


def _where(s: Step) -> str:
    from reportgen.spec.yamlsrc import field_name

    return f"folder {s.path or s.adapter!r}" if s.at[-1] == "series" else field_name(s.at)


def _glob_steps(pattern: str, own_path: str | None, adapter: str | None, at: Path_,
                base_dir: Path, problems: list[tuple[Path_, str]]) -> list[Step]:
    """Folders matching ``pattern`` (relative to the spec), each named ``…<digits>``."""
    try:
        text = expand_vars(pattern)
    except InputError as e:
        problems.append((at, str(e)))
        return []
    root = Path(text).expanduser()
    full = root if root.is_absolute() else Path(base_dir) / root
    matches = sorted(Path(p) for p in globlib.glob(str(full)) if Path(p).is_dir())
    if not matches:
        problems.append((at, f"{pattern!r} matches no folder"))
        return []
    out = []
    for m in matches:
        found = _STEP.search(m.name)
        if found is None:
            problems.append((at, f"cannot read a step number from folder {m.name!r}; expected "
                                 "a name ending in digits, such as checkpoint-500"))
            continue
        written = _written(pattern, m, root.is_absolute(), base_dir)
        if own_path is not None:  # the folders are adapters over the candidate's model
            out.append(Step(int(found.group(1)), own_path, written, at))
        else:
            out.append(Step(int(found.group(1)), written, adapter, at))
    return out


def _written(pattern: str, match: Path, absolute: bool, base_dir: Path) -> str:
    """A matched folder as the spec would write it: the pattern's own folder (its variables
    kept) where only the last part has wildcards, else the match itself."""
    parent = Path(pattern).parent
    if not any(ch in str(parent) for ch in "*?["):
        return str(parent / match.name)
    return str(match) if absolute else os.path.relpath(match, base_dir)


def _list_steps(items: list, own_path: str | None, adapter: str | None, at: Path_,
                problems: list[tuple[Path_, str]]) -> list[Step]:
    out = []
    for j, item in enumerate(items):
        if not isinstance(item, dict):
            continue  # pydantic names it
        step = item.get("step")
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            if isinstance(step, str) and step.strip().isdigit():
                step = int(step)
            else:
                continue  # pydantic says what a step is
        path = item.get("path") if isinstance(item.get("path"), str) else own_path
        ad = item.get("adapter") if isinstance(item.get("adapter"), str) else adapter
        if path is None:
            problems.append(((*at, j), "has no path, and the candidate names none; expected a "
                                       "path here or on the candidate"))
            continue
        out.append(Step(step, path, ad, (*at, j)))
    return out


def entry_problems(entry: dict, at: Path_, base_dir: Path) -> list[tuple[Path_, str]]:
    """What is wrong with a series entry beyond its types (one problem per mistake)."""
    problems = []
    if entry.get("derive") is not None:
        problems.append(((*at, "derive"), "a series cannot also derive; derive a variant from "
                                          "one of its steps instead (from: NAME@STEP)"))
    if entry.get("role") == "noise_floor":
        problems.append(((*at, "role"), "a series is audited as a candidate; a noise floor "
                                        "is one model"))
    return problems + steps_of(entry, at, base_dir)[1]


def expand_raw(raw_candidates: list, base_dir: Path) -> list[tuple[str, Path_, dict]]:
    """(name, where, entry) of every candidate with each series replaced by its steps."""
    out = []
    for i, c in enumerate(raw_candidates):
        if not isinstance(c, dict):
            continue
        at: Path_ = ("models", "candidates", i)
        name = c.get("name") if isinstance(c.get("name"), str) else f"candidates[{i}]"
        if not is_series(c):
            out.append((name, at, c))
            continue
        for s in steps_of(c, at, base_dir)[0]:
            entry = {k: v for k, v in c.items() if k not in ("series", "name", "path", "adapter")}
            entry.update(path=s.path, adapter=s.adapter)
            out.append((step_name(name, s.step), s.at, entry))
    return out


def step_names(raw_candidates: Any, base_dir: Path) -> list[str]:
    """The candidate names a series' steps take (NAME@STEP), for checks and derivations."""
    if not isinstance(raw_candidates, list):
        return []
    return [name for name, at, _ in expand_raw(raw_candidates, base_dir)
            if "series" in at]


def expand_spec(spec: Any, base_dir: Path) -> tuple[Any, tuple[Series, ...]]:
    """``spec`` with each series candidate replaced by one candidate per step, and the series."""
    candidates, series = [], []
    for i, c in enumerate(spec.models.candidates):
        if c.series is None:
            candidates.append(c)
            continue
        raw = c.model_dump(by_alias=True)
        steps = steps_of(raw, ("models", "candidates", i), base_dir)[0]
        names = []
        for s in steps:
            name = step_name(c.name, s.step)
            names.append((s.step, name))
            candidates.append(c.model_copy(update={"name": name, "path": s.path,
                                                   "adapter": s.adapter, "series": None}))
        series.append(Series(c.name, tuple(names)))
    models = spec.models.model_copy(update={"candidates": candidates})
    return spec.model_copy(update={"models": models}), tuple(series)


def without_unused(normalised: dict) -> dict:
    """The normalised spec without the fields added since (series, max_memory) where it
    leaves them at their defaults, so a spec that uses none of them normalises, and digests,
    exactly as before they existed."""
    from reportgen.spec.types import SeriesSettings

    models = normalised.get("models", {})
    for c in [models.get("base", {}), *models.get("candidates", [])]:
        for key in ("series", "max_memory"):
            if c.get(key) is None:
                c.pop(key, None)
    for chk in normalised.get("checks", []):
        for key in ("step", "fail_if_onset_before", "warn_if_onset_before"):
            if chk.get(key) is None:
                chk.pop(key, None)
    analysis = normalised.get("analysis", {})
    if analysis.get("series") == SeriesSettings().model_dump(mode="json"):
        analysis.pop("series", None)
    return normalised
