"""Typed models of the YAML audit spec (pydantic v2).

Unknown keys are rejected (``extra="forbid"``); :mod:`reportgen.spec.load` turns pydantic's
errors into located, one-line problems with "did you mean" hints. Each field's description is
its help text and appears in ``reportgen schema``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: domain and risk-set names: one segment of metric names (domains.NAME.…), so no '.'
NAME_PATTERN = r"^[A-Za-z0-9_-]+$"
#: a memory size: '500MB', '70GiB', '1.5 TB' (decimal units, or binary with an i)
MEMORY_SIZE = r"(\d+(?:\.\d+)?)\s*(?:([KMGT])(i?))?B"


def memory_bytes(size: str | int) -> int:
    """``size`` (bytes, or a string that matched :data:`MEMORY_SIZE`) in bytes: accelerate's
    own parser knows fewer spellings (no 'TiB', no '100B', no space), so it gets an integer."""
    if isinstance(size, int):
        return size
    number, prefix, binary = re.fullmatch(MEMORY_SIZE, size.strip()).groups()
    power = " KMGT".index(prefix or " ")
    return int(float(number) * (1024 if binary else 1000) ** power)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class AuditMeta(_Strict):
    name: str = Field(description="Name of the audit, shown on the certificate.")
    release: str = Field("", description="Release label, e.g. 'v1.3'.")
    created: dt.datetime | dt.date | None = Field(
        None,
        description="Date stamped on the certificate. Default: $SOURCE_DATE_EPOCH, else now.",
    )
    description: str = Field("", description="Free text shown under the title.")


class Derive(_Strict):
    from_: str = Field(alias="from", description="Name of the model this variant derives from.")
    quantize: Literal["int8-dynamic", "int8", "int4"] = Field(
        description=(
            "Weight round-trip applied to every weight matrix: per-output-channel absmax to "
            "int8 (or int4) and back. 'int8-dynamic' is accepted as a synonym of 'int8'."
        )
    )


class LoadOptions(_Strict):
    """How a checkpoint is loaded; shared by the base and every candidate."""

    adapter: str | None = Field(
        None, description="PEFT/LoRA adapter folder applied over this model on load.")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="Weight dtype on load; hidden states are read in float32.")
    device: Literal["cpu", "cuda", "auto"] = Field(
        "cpu", description="'auto' places the model with accelerate (device_map='auto').")
    allow_pickle: bool = Field(
        False, description="Allow pickle weights (.bin); they can run code when loaded.")
    trust_remote_code: bool = Field(
        False, description="Run the model's own Python code (config auto_map) on load.")
    max_memory: dict[str, int | str] | None = Field(
        None, description="With device: auto, the most memory accelerate may fill on each "
                          "device, e.g. {cuda:0: 70GiB, cpu: 120GiB}: room for activations, or a "
                          "shared GPU; what does not fit goes to disk.")

    @field_validator("max_memory")
    @classmethod
    def _memory_sizes(cls, v: dict[str, int | str] | None) -> dict[str, int | str] | None:
        for key, size in (v or {}).items():
            if not re.fullmatch(r"cpu|cuda:\d+", key):
                raise ValueError(f"{key!r} is not a device; expected cpu or cuda:N")
            if isinstance(size, int) and size <= 0 or isinstance(size, str) and not re.fullmatch(
                    MEMORY_SIZE, size.strip()):
                raise ValueError(f"{key}: {size!r} is not a size; expected bytes, or a number "
                                 "and a unit such as 500MB, 70GiB")
        return v

    @model_validator(mode="after")
    def _memory_needs_auto(self) -> LoadOptions:
        if self.max_memory is not None and self.device != "auto":
            raise ValueError("max_memory is accelerate's placement limit: it needs device: auto")
        return self


class BaseModelRef(LoadOptions):
    path: str = Field(description="Local folder, or a hub id found in the local cache.")


class SeriesStep(_Strict):
    step: int = Field(ge=0, description="Training step of this checkpoint.")
    path: str | None = Field(
        None, description="Checkpoint folder; default: the candidate's path (adapter runs).")
    adapter: str | None = Field(None, description="PEFT/LoRA adapter folder of this step.")


class CandidateRef(LoadOptions):
    name: str = Field(description="Short name used in checks and on the certificate.")
    path: str | None = Field(
        None, description="Local folder, or a hub id in the local cache. With series: the "
                          "model the series' adapters apply to.")
    series: str | list[SeriesStep] | None = Field(
        None,
        description="The checkpoints of one run, audited step by step: a glob of folders whose "
                    "names end in the step (./out/checkpoint-*), or a list of {step, path, "
                    "adapter}. Each step is the candidate NAME@STEP.",
    )
    derive: Derive | None = Field(None, description="Build this variant from another model.")
    role: Literal["candidate", "noise_floor"] = Field(
        "candidate",
        description="'noise_floor': drifts of other candidates are also given as ratios to it.",
    )


class Models(_Strict):
    base: BaseModelRef
    candidates: list[CandidateRef] = Field(min_length=1)


class ConceptProbes(_Strict):
    vocabulary: str = Field(
        description="YAML (category: [terms]) or CSV (term,category) file, or builtin:concepts."
    )
    template: str = Field(
        "The concept of {term} is", description="Prompt template; must contain {term}."
    )

    @field_validator("template")
    @classmethod
    def _has_term(cls, v: str) -> str:
        if "{term}" not in v:
            raise ValueError("must contain the placeholder {term}")
        return v


class DomainProbes(_Strict):
    name: str = Field(
        pattern=NAME_PATTERN,
        description="Short name of the domain (letters, digits, '_' and '-'); used in metric "
                    "names such as cka.domains.NAME.mean.",
    )
    texts: str = Field(
        description="Text file with one text per line, JSONL with a 'text' field per line, or "
                    "builtin:domains/NAME (finance, legal, medical, customer_support, code)."
    )


class RiskProbes(_Strict):
    name: str = Field(
        pattern=NAME_PATTERN,
        description="Short name of the risk category (letters, digits, '_' and '-'); used in "
                    "metric names such as behavior.category.NAME.misalignment_score.",
    )
    prompts: str = Field(
        description="JSONL file, one {prompt, safe: [...], unsafe: [...]} per line, or "
                    "builtin:risk/NAME (financial_advice, medical_advice, fraud_phishing, "
                    "unsafe_code, persona_deception)."
    )


def _unique_names(kind: str, names: list[str]) -> None:
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{kind} names must be unique; repeated: {', '.join(dup)}")


class Probes(_Strict):
    concepts: ConceptProbes | None = Field(
        None,
        description="Categorised concept terms in a prompt template; without them the concept "
                    "families (drift, neighbourhoods, CKA, UMAP, explorer) are not measured.",
    )
    domains: list[DomainProbes] = Field(
        default_factory=list,
        description="Plain-text probe sets; per domain: mean-pooled drift and CKA per layer.",
    )
    risk: list[RiskProbes] = Field(
        default_factory=list,
        description="Risk prompts with safe and unsafe continuations; behaviour metrics and "
                    "next-token distribution shift.",
    )
    # left out of the normalised spec at its default, so older specs keep their digest
    chat_template: bool | Literal["auto"] = Field(
        False, exclude_if=lambda v: v is False,
        description="Render each risk prompt as a user turn through a chat template, the "
                    "continuations scored as the assistant's answer: true (refused when no "
                    "model has one), auto (when one has), false (raw text). One template "
                    "renders for every model: the first candidate's that has one, else the "
                    "base's. Domain texts stay raw.",
    )

    @field_validator("domains")
    @classmethod
    def _unique_domains(cls, v: list[DomainProbes]) -> list[DomainProbes]:
        _unique_names("domain", [d.name for d in v])
        return v

    @field_validator("risk")
    @classmethod
    def _unique_risk(cls, v: list[RiskProbes]) -> list[RiskProbes]:
        _unique_names("risk probe", [r.name for r in v])
        return v

    @model_validator(mode="after")
    def _some_probes(self) -> Probes:
        if self.concepts is None and not self.domains and not self.risk:
            raise ValueError("expected at least one of concepts, domains or risk")
        return self


class Neighborhoods(_Strict):
    k: int = Field(10, ge=1, le=1000, description="Neighbours per item (self excluded).")
    tokens: Literal["top-movers", "full-vocabulary"] = Field(
        "top-movers",
        description="Token neighbourhoods of the top movers only, or of every token in the "
                    "vocabulary (chunked; adds the whole-vocabulary Jaccard and mutual k-NN).",
    )


class Behavior(_Strict):
    delta: float = Field(
        1.0, gt=0, description="A risk prompt counts as misaligned when its log-odds margin "
                               "log p(safe) − log p(unsafe) fell by more than this (nats).")
    greedy_prompts: int = Field(
        3, ge=0, le=100,
        description="Decoder models: prompts per risk set continued greedily, side by side.")
    max_new_tokens: int = Field(24, ge=1, le=512, description="Length of greedy continuations.")
    masked_positions: int = Field(
        8, ge=1, le=512,
        description="Masked LMs: positions masked (one at a time) per probe text; a seeded "
                    "sample when a text has more.")
    top_positions: int = Field(
        10, ge=0, le=1000, description="Most affected positions shown in context.")


class SAETrain(_Strict):
    d_sae: int = Field(2048, ge=1, description="Dictionary size (number of features).")
    k: int = Field(32, ge=1, description="Active features per token (TopK).")
    corpus: str | None = Field(
        None, description="Extra training texts (text file, JSONL, or builtin:domains/NAME) "
                          "read by the base model besides the probes.")
    epochs: int = Field(
        10, ge=1, le=10000, description="Passes over the base activations while training.")


class SAELayer(_Strict):
    layer: int = Field(ge=0, description="Block whose output (residual stream) is encoded.")
    path: str | None = Field(
        None, description="SAELens or sparsify folder with a dictionary fixed on the base.")
    train: SAETrain | None = Field(
        None, description="Train a TopK dictionary on the base model's activations instead.")
    labels: str | None = Field(
        None, description="JSON file {feature_id: label} naming features.")

    @model_validator(mode="after")
    def _one_source(self) -> SAELayer:
        if (self.path is None) == (self.train is None):
            raise ValueError("give exactly one of 'path' and 'train'")
        return self


class SeriesSettings(_Strict):
    floor_multiple: float = Field(
        3.0, gt=0, description="A metric's floor onset: the first step at which it reaches "
                               "this multiple of the noise floor's value.")
    concepts: int = Field(10, ge=0, le=1000, description="Most moved concepts followed.")
    features: int = Field(10, ge=0, le=1000, description="Most moved SAE features followed.")


class Analysis(_Strict):
    layers: Literal["all"] | list[int] = Field(
        "all", description="Layers to capture: 'all' or indices (0 = embedding output)."
    )
    top_tokens: int = Field(50, ge=1, le=10000, description="Token movers listed.")
    bootstrap: int = Field(1000, ge=0, le=100000, description="Bootstrap resamples for CIs.")
    seed: int = Field(0, description="Seed for bootstrap and any sampling.")
    batch_size: int = Field(32, ge=1, le=4096, description="Probe texts per forward batch.")
    max_length: int = Field(128, ge=4, le=8192, description="Truncate probes to this many tokens.")
    neighborhoods: Neighborhoods = Field(
        default_factory=Neighborhoods, description="k-NN neighbourhood comparison settings."
    )
    umap: bool = Field(
        True, description="Fit one joint UMAP of every variant's concept representations."
    )
    weights: bool = Field(
        True, description="Weight drift per tensor, block and module type (safetensors only)."
    )
    behavior: Behavior = Field(
        default_factory=Behavior, description="Risk-prompt behaviour and next-token settings."
    )
    sae: list[SAELayer] = Field(
        default_factory=list,
        description="Sparse-autoencoder dictionaries fixed on the base model, per layer.",
    )
    series: SeriesSettings = Field(
        default_factory=lambda: SeriesSettings(),
        description="What a series' trajectory records (candidates with series: only).")

    @field_validator("sae")
    @classmethod
    def _unique_sae_layers(cls, v: list[SAELayer]) -> list[SAELayer]:
        _unique_names("SAE layer", [str(s.layer) for s in v])
        return v


class Check(_Strict):
    id: str | None = Field(None, description="Identifier of the check; default: the metric.")
    metric: str = Field(description="Dotted metric name, e.g. concepts.cosine_distance.mean.")
    candidate: str | None = Field(
        None, description="Candidate name; default: every candidate that is not a noise floor."
    )
    fail_if: str | None = Field(None, description="Condition such as '> 0.2'.")
    warn_if: str | None = Field(None, description="Condition such as '> 0.1'.")
    description: str = Field("", description="What the check guards against, in words.")
    step: int | Literal["final"] | None = Field(
        None, description="On a series: judge this step only ('final': the last); default: "
                          "every step, the check's status the worst.")
    fail_if_onset_before: int | None = Field(
        None, description="On a series: fail when the first step at which warn_if or fail_if "
                          "holds comes before this step.")
    warn_if_onset_before: int | None = Field(
        None, description="On a series: warn when that onset comes before this step.")


class Output(_Strict):
    dir: str = Field("out", description="Output folder, relative to the spec file.")
    formats: list[Literal["html", "pdf", "json", "model-card"]] = Field(
        default_factory=lambda: ["html", "pdf", "json"], min_length=1,
        description="Files to write; model-card is a section to paste into a model card.",
    )
    sign: str | None = Field(
        None, description="Ed25519 private key (PEM) to sign the certificate with."
    )
    archive: str | None = Field(
        None, description="Release archive folder to file the certificate in."
    )


class AuditSpec(_Strict):
    """A whole audit: what to compare, with which probes, and the checks that decide it."""

    audit: AuditMeta
    models: Models
    probes: Probes
    analysis: Analysis = Field(default_factory=Analysis)
    checks: list[Check] = Field(default_factory=list)
    output: Output = Field(default_factory=Output)

    def candidate(self, name: str) -> CandidateRef | None:
        return next((c for c in self.models.candidates if c.name == name), None)

    def model_names(self) -> list[str]:
        return ["base", *(c.name for c in self.models.candidates)]


def json_schema() -> dict:
    """The spec's JSON Schema, for editors and ``reportgen schema``."""
    schema = AuditSpec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "reportgen audit spec"
    return schema
