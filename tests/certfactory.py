"""A realistic synthetic certificate, built through the real metric and verdict code.

Render, summary and schema tests need a certificate without loading any model; building it
from random hidden states through :func:`concept_metrics` and :func:`embedding_metrics`
keeps its tables exactly the shape the pipeline produces.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from reportgen.analysis.checks import evaluate
from reportgen.certificate.document import CertificateBuilder
from reportgen.core.records import CheckResult, Comparison, Digest, FileDigest, ModelInfo, ProbeInfo
from reportgen.families.concepts.metrics import concept_drift, concept_metrics
from reportgen.families.embeddings.metrics import align_vocabularies, embedding_metrics, token_drift

CATEGORIES: dict[str, list[str]] = {
    "finance": [
        "bank", "loan", "credit", "interest", "mortgage", "debt", "savings", "invoice",
        "refund", "payment", "budget", "tax", "salary", "pension", "dividend", "equity",
        "bond", "audit", "cash", "wallet", "deposit", "fee", "insurance", "profit", "stock",
    ],
    "medicine": [
        "doctor", "nurse", "vaccine", "fever", "surgery", "diagnosis", "dose", "tablet",
        "clinic", "therapy", "allergy", "virus", "symptom", "pharmacy", "injury", "cancer",
        "insulin", "blood", "pulse", "bandage", "infection", "prescription", "hospital",
        "antibiotic", "scan",
    ],
    "emotion": [
        "joy", "anger", "fear", "grief", "pride", "shame", "hope", "envy", "calm", "worry",
        "trust", "disgust", "love", "guilt", "relief", "boredom", "awe", "regret", "panic",
        "delight", "sorrow", "jealousy", "gratitude", "loneliness", "surprise",
    ],
    "safety": [
        "weapon", "poison", "password", "exploit", "malware", "fraud", "theft", "violence",
        "overdose", "hacking", "phishing", "explosive", "stalking", "bribery", "smuggling",
        "arson", "kidnapping", "extortion", "counterfeit", "sabotage", "trespass", "blackmail",
        "forgery", "vandalism", "scam",
    ],
}
N_LAYERS = 7
HIDDEN = 32
VOCAB = 3000


@dataclass(frozen=True)
class _Variant:
    name: str
    role: str
    layer_noise: float  # relative noise added at the last layer (shallower layers get less)
    planted: dict[str, float]  # extra relative noise per category
    token_noise: float
    new_tokens: tuple[str, ...] = ()


VARIANTS = (
    _Variant("finetuned", "candidate", 0.25, {"finance": 0.9, "safety": 0.35}, 0.08,
             ("<|support|>", "<|agent|>")),
    _Variant("lora", "candidate", 0.12, {"finance": 0.2}, 0.01),
    _Variant("base-int8", "noise_floor", 0.07, {}, 0.02),
)


def make_terms(n_concepts: int) -> tuple[list[str], list[str]]:
    """``n_concepts`` terms spread round-robin over the four categories (at most 100)."""
    cats = list(CATEGORIES)
    if n_concepts > sum(len(v) for v in CATEGORIES.values()):
        raise ValueError("at most 100 concepts")
    terms, categories = [], []
    for i in range(n_concepts):
        c = cats[i % len(cats)]
        terms.append(CATEGORIES[c][i // len(cats)])
        categories.append(c)
    return terms, categories


def _hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _digest(name: str, files: tuple[str, ...]) -> Digest:
    per_file = [FileDigest(f, _hex(f"{name}/{f}")) for f in files]
    root = hashlib.sha256("".join(f.digest for f in per_file).encode()).hexdigest()
    return Digest("sha256", root, per_file)


def _models(variants: tuple[_Variant, ...]) -> list[ModelInfo]:
    files = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
    common = dict(kind="causal-lm", architecture="GPT2LMHeadModel", layers=N_LAYERS - 1,
                  hidden_size=HIDDEN, vocab_size=VOCAB)
    out = [ModelInfo(name="base", role="base", parameters=124_439_808,
                     source="./checkpoints/base", digest=_digest("base", files), **common)]
    for v in variants:
        derived = v.role == "noise_floor"
        out.append(ModelInfo(
            name=v.name, role=v.role, parameters=124_439_808 + 64 * len(v.new_tokens),
            source="" if derived else f"./checkpoints/{v.name}",
            digest=_digest(v.name, files), derived_from="base" if derived else None,
            derivation="int8 per-channel absmax weight round-trip" if derived else None,
            **common,
        ))
    return out


def _vocab() -> list[str]:
    words = [t for ts in CATEGORIES.values() for t in ts]
    out = []
    for i in range(VOCAB):
        w = words[i % len(words)]
        out.append(w if i < len(words) else f"Ġ{w}{i // len(words)}")
    return out


def _perturb(rng: np.random.Generator, x: np.ndarray, scale: np.ndarray | float) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True) / np.sqrt(x.shape[-1])
    return x + rng.normal(size=x.shape) * norm * scale


def _comparison(rng, v: _Variant, base_h, categories, terms, base_emb, floor) -> tuple:
    layer_scale = np.linspace(0.1, 1.0, N_LAYERS)[:, None, None]
    cat_extra = np.array([v.planted.get(c, 0.0) for c in categories])[None, :, None]
    scale = layer_scale * (v.layer_noise + cat_extra)
    cand_last = _perturb(rng, base_h, scale)
    cand_mean = _perturb(rng, base_h * 0.9, scale * 0.7)
    drift = concept_drift(base_h, cand_last, base_h * 0.9, cand_mean, list(range(N_LAYERS)))
    metrics, tables = concept_metrics(
        drift, floor[0] if floor else None, terms, categories, n_boot=200, seed=0)
    base_vocab = _vocab()
    cand_vocab = base_vocab + list(v.new_tokens)
    cand_emb = np.vstack([_perturb(rng, base_emb, rng.gamma(1.0, v.token_noise + 1e-4,
                                                            size=(VOCAB, 1))),
                          rng.normal(size=(len(v.new_tokens), HIDDEN))])
    align = align_vocabularies(base_vocab, cand_vocab)
    dist = token_drift(base_emb, cand_emb, align)
    em, et = embedding_metrics(dist, floor[1] if floor else None, align, top=50, n_boot=200,
                               seed=0)
    metrics.update(em)
    tables.update(et)
    return Comparison("base", v.name, v.role, metrics, tables), drift, dist


CHECK_PLAN = (
    ("concept-drift-finetuned", "concepts.cosine_distance.mean", "finetuned", "> 0.05", "> 0.02",
     "Concept drift of the release candidate stays small."),
    ("concept-floor-ratio-finetuned", "concepts.cosine_distance.noise_floor_ratio", "finetuned",
     "> 50", "> 3", "Concept drift is within a few times the quantization noise."),
    ("finance-drift-finetuned", "concepts.category.finance.cosine_distance.mean", "finetuned",
     "> 0.5", "> 0.2", ""),
    ("concept-drift-lora", "concepts.cosine_distance.mean", "lora", "> 0.2", "> 0.1", ""),
    ("token-drift-lora", "embeddings.cosine_distance.mean", "lora", "> 0.1", None, ""),
    ("token-p99-finetuned", "embeddings.cosine_distance.p99", "finetuned", "> 0.9", "> 0.5",
     ""),
)


def make_builder(
    *, n_concepts: int = 40, terms: list[str] | None = None, seed: int = 0,
    noise_floor: bool = True, checks: tuple = CHECK_PLAN,
) -> CertificateBuilder:
    """The builder behind :func:`make_certificate`, for tests that tweak dataclasses."""
    rng = np.random.default_rng(seed)
    default_terms, categories = make_terms(n_concepts)
    terms = list(terms) if terms is not None else default_terms
    variants = tuple(v for v in VARIANTS if noise_floor or v.role != "noise_floor")
    base_h = rng.normal(size=(N_LAYERS, n_concepts, HIDDEN))
    base_emb = rng.normal(size=(VOCAB, HIDDEN))
    floor = None
    comparisons: list[Comparison] = []
    for v in sorted(variants, key=lambda v: v.role != "noise_floor"):
        comp, drift, dist = _comparison(rng, v, base_h, categories, terms, base_emb, floor)
        if v.role == "noise_floor":
            floor = (drift, dist)
        comparisons.append(comp)
    comparisons.sort(key=lambda c: c.role == "noise_floor")
    by_name = {c.candidate: c for c in comparisons}
    results: list[CheckResult] = [
        evaluate(cid, metric, cand, by_name.get(cand), fail_if, warn_if, desc)
        for cid, metric, cand, fail_if, warn_if, desc in checks
    ]
    return CertificateBuilder(
        audit={"name": "support-bot fine-tune", "release": "v1.3",
               "created": "2025-03-14T09:26:53Z"},
        tool={"name": "reportgen", "version": "0.1.0",
              "libraries": {"python": "3.11.9", "torch": "2.13.0", "transformers": "4.46.3",
                            "numpy": "2.1.3", "altair": "6.3.0", "vl-convert-python": "1.9.0",
                            "typst": "0.15.2"}},
        spec={"digest": _hex("spec"), "content": {
            "audit": {"name": "support-bot fine-tune", "release": "v1.3"},
            "models": {"base": {"path": "./checkpoints/base"}},
            "checks": [{"id": c[0], "metric": c[1], "candidate": c[2], "fail_if": c[3],
                        "warn_if": c[4]} for c in checks],
        }},
        models=_models(variants),
        probes=[
            ProbeInfo("concepts", "concepts", n_concepts, _hex("concepts"),
                      {"template": "The concept of {term} is"}),
            ProbeInfo("finance", "domain", 120, _hex("finance")),
        ],
        comparisons=comparisons,
        checks=results,
        warnings=["The base tokenizer has no padding token; the end-of-text token was used."],
        limitations=[
            "Concept drift is measured on one prompt template; other phrasings may differ.",
            "The noise floor is a single int8 round-trip, not a distribution over seeds.",
        ],
        analysis={"layers": list(range(N_LAYERS)), "bootstrap": {"resamples": 200, "seed": 0}},
    )


def make_certificate(**kwargs: Any) -> dict[str, Any]:
    """A certificate dict: base + finetuned + lora + int8 noise floor, PASS/WARN/FAIL checks."""
    return make_builder(**kwargs).build()


def small_pdf(heading: str, cert: Any = None) -> bytes:
    """A one-page PDF saying ``heading``, with ``cert``'s JSON attached as the certificate
    PDF attaches it (nothing attached without one): fast stand-ins for verify's tests."""
    from reportgen.certificate.document import JSON_NAME
    from reportgen.views.pdf import created_time, typeset

    source = f"= {heading}\n"
    files: dict[str, bytes] = {}
    if cert is not None:
        source += (f'#pdf.attach("{JSON_NAME}", relationship: "source", '
                   'mime-type: "application/json", description: "certificate")\n')
        files[JSON_NAME] = cert.to_json().encode("utf-8")
    when = created_time(cert) if cert is not None else None
    import datetime as dt

    return typeset(source.encode(), files, when or dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc))
