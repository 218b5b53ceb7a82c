"""Where each spec SAE layer's dictionary comes from, checked before any model loads.

A ``path`` dictionary is loaded and its width checked against the model's config as soon as
the collectors are planned (models resolved, nothing captured), so a wrong or unreadable
folder stops the audit with one line naming the spec field and the folder. A ``train``
dictionary is trained by the base's collector and stored with the base's capture; candidates
read that very file, and its digest keys their captures.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reportgen.core.errors import InputError
from reportgen.sae.formats import CFG, SAELENS_WEIGHTS, load_sae
from reportgen.sae.model import SAE, check_width
from reportgen.spec.resolve import model_shape

HOOK_POINT = ("residual stream after block L: hidden_states[L] of the transformers model "
              "(layer 0 = embedding output); for a causal LM's last layer this state has the "
              "final layer norm applied")


@dataclass
class LayerSource:
    index: int  # position in analysis.sae
    layer: int
    digest: str  # of the dictionary (or, for one still to train, of its recipe)
    sae: SAE | None = None  # None while still to be trained
    train: dict[str, Any] | None = None  # d_sae, k, epochs, seed, corpus digest
    corpus: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    origin: str = "path"  # path | trained


def folder_digest(folder: Path) -> str:
    """SHA-256 over the dictionary's config and weights (what encoding depends on)."""
    h = hashlib.sha256()
    for name in sorted(p.name for p in folder.iterdir() if p.is_file()):
        h.update(name.encode() + b"\0" + hashlib.sha256((folder / name).read_bytes()).digest())
    return h.hexdigest()


def plan_sources(loaded: Any, model: Any, base_extra: Any | None) -> list[LayerSource]:
    """One source per ``analysis.sae`` entry; raises InputError naming the field."""
    from reportgen.spec.yamlsrc import resolve_path

    d, n_layers = model_shape(model.config)
    out = []
    for i, s in enumerate(loaded.spec.analysis.sae):
        where = f"analysis.sae[{i}]"
        if s.layer > n_layers:
            raise InputError(f"{where}.layer: layer {s.layer} is out of range; "
                             f"{model.name} has layers 0..{n_layers}")
        labels = _labels(resolve_path(s.labels, loaded.base_dir), f"{where}.labels") \
            if s.labels else {}
        if s.path is not None:
            folder = resolve_path(s.path, loaded.base_dir)
            sae = _load_checked(folder, f"{where}.path", d, s.layer)
            out.append(LayerSource(i, s.layer, folder_digest(folder), sae, labels=labels))
        elif base_extra is not None:  # a candidate: the dictionary the base trained
            sae, digest = stored_dictionary(base_extra, s.layer)
            out.append(LayerSource(i, s.layer, digest, sae, labels=labels, origin="trained"))
        else:
            out.append(_train_source(loaded, i, s, labels))
    return out


def _train_source(loaded: Any, i: int, s: Any, labels: dict[str, str]) -> LayerSource:
    from reportgen.spec.probes import load_texts, probe_digest

    corpus = []
    if s.train.corpus:
        corpus = load_texts(s.train.corpus, loaded.base_dir, field=f"analysis.sae[{i}].train."
                            "corpus", spec_file=loaded.file)
    recipe = {"d_sae": s.train.d_sae, "k": s.train.k, "epochs": s.train.epochs,
              "seed": loaded.spec.analysis.seed,
              "corpus": probe_digest("corpus", corpus) if corpus else None}
    digest = "train:" + hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()
    return LayerSource(i, s.layer, digest, None, recipe, corpus, labels, "trained")


def _load_checked(folder: Path, where: str, d: int, layer: int) -> SAE:
    try:
        sae = load_sae(folder)
        check_width(sae, d, str(folder), layer)
    except InputError as e:
        raise InputError(f"{where}: {e}") from None
    return sae


def _labels(path: Path, where: str) -> dict[str, str]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{where}: {path}: expected a JSON object {{feature_id: label}} "
                         f"({type(e).__name__})") from None
    if not isinstance(raw, dict) or not all(
            str(k).isdigit() and isinstance(v, str) for k, v in raw.items()):
        raise InputError(f"{where}: {path}: expected a JSON object {{feature_id: label}}")
    return {str(int(k)): v for k, v in raw.items()}


def stored_names(layer: int) -> tuple[str, str]:
    """Names under which a trained dictionary's two SAELens files ride in the capture."""
    return f"layer{layer}.{CFG}", f"layer{layer}.{SAELENS_WEIGHTS}"


def stored_dictionary(extra: Any, layer: int) -> tuple[SAE, str]:
    """Load a dictionary stored as two files of a capture extra (a SAELens folder split in
    two, since the cache keeps files, not folders), with its digest."""
    cfg_name, w_name = stored_names(layer)
    with tempfile.TemporaryDirectory(prefix="reportgen-sae-") as tmp:
        folder = Path(tmp)
        (folder / CFG).write_bytes(Path(extra.files[cfg_name]).read_bytes())
        (folder / SAELENS_WEIGHTS).write_bytes(Path(extra.files[w_name]).read_bytes())
        return load_sae(folder), folder_digest(folder)
