"""Trained dictionaries leave with the certificate: a SAELens folder per layer beside it.

A dictionary the audit trained lives in the capture cache; a reader needs it next to the
certificate to re-encode activations with SAELens (or :func:`reportgen.sae.load_sae`) and to
check it against the digest the certificate records (:func:`.sources.folder_digest`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reportgen.families.sae import TRAINED_SAE
from reportgen.families.sae.sources import stored_names
from reportgen.sae.files import DICTIONARY_FILES

FOLDER = TRAINED_SAE


def saved_as(layer: int) -> str:
    """The folder, relative to the certificate, that holds layer ``layer``'s dictionary."""
    return f"{FOLDER}/layer{layer}"


def attachments(base_capture: Any) -> dict[str, Path | bytes]:
    """``{relative path: file}`` of every dictionary the base's capture trained (files in the
    capture cache, copied when the certificate is saved)."""
    extra = (getattr(base_capture, "extras", None) or {}).get("sae")
    if extra is None:
        return {}
    out: dict[str, Path | bytes] = {}
    for key, info in sorted(extra.meta.get("layers", {}).items(), key=lambda kv: int(kv[0])):
        if info.get("origin") != "trained":
            continue
        for name, stored in zip(DICTIONARY_FILES, stored_names(int(key)), strict=True):
            out[f"{saved_as(int(key))}/{name}"] = Path(extra.files[stored])
    return out
