"""The glossary at the end of the certificate: the words a non-specialist reader meets.

One list for every certificate, in alphabetical order, so a regulator finds the same
definition in every release; a term the page does not use costs a line and confuses no one.
A plug-in family adds its own terms with :func:`add_term`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    term: str
    definition: str

    @property
    def id(self) -> str:
        return "glossary-" + re.sub(r"[^a-z0-9]+", "-", self.term.lower()).strip("-")


_TERMS: dict[str, Term] = {}


def add_term(term: str, definition: str) -> None:
    """Register a glossary entry; a second definition of one term is a programming error."""
    key = term.casefold()
    if key in _TERMS and _TERMS[key].definition != definition:
        raise ValueError(f"glossary term {term!r} defined twice")
    _TERMS[key] = Term(term, definition)


def glossary() -> list[Term]:
    """Every registered term, sorted case-insensitively."""
    return sorted(_TERMS.values(), key=lambda t: t.term.casefold())


for _term, _definition in (
    ("Base model", "The model before fine-tuning; every other model is compared with it."),
    ("Candidate", "A model compared with the base: usually the fine-tune to be released."),
    ("Checkpoint", "The files that hold a model's weights and configuration."),
    ("Digest", "A SHA-256 fingerprint of a file or of a set of files. Changing one byte "
     "changes the digest, so a digest names exact checkpoint bytes; anyone can recompute it "
     "(for example with sha256sum) and compare."),
    ("Certificate digest", "The SHA-256 digest of certificate.json. This page and the PDF "
     "are rendered from that file alone, so the digest identifies what they show."),
    ("Concept", "A word or short phrase from a categorised vocabulary (finance, medicine, …), "
     "placed in a prompt template and read by each model."),
    ("Hidden state", "The vector a model computes for a token at one layer. The certificate "
     "compares the hidden states of the base and a candidate for the same input."),
    ("Layer", "One stage of the network. Layer 0 is the embedding output; later layers are "
     "deeper. Drift by layer shows where in the network a change sits."),
    ("Cosine distance", "1 − cos(a, b) for two vectors a and b: 0 when they point the same "
     "way, 1 when they are orthogonal, up to 2 when opposite. Used here as 'how far a "
     "representation moved'."),
    ("Drift", "How far something moved between the base and a candidate, measured here as "
     "cosine distance (representations) or relative norm of the change (weights)."),
    ("Token", "A piece of text the model reads as one unit (a word, part of a word, or a "
     "symbol). '␣' marks a leading space."),
    ("Token embedding", "The vector a model looks up for each token before its first layer."),
    ("Neighbours (k-NN)", "The k items whose representations are most similar (cosine) to a "
     "given item in one model. A fine-tune can change an item's neighbours without moving it "
     "far."),
    ("Jaccard overlap", "The size of the intersection of two sets divided by the size of their "
     "union: 1 when a neighbour set is unchanged, 0 when no neighbour was kept."),
    ("CKA", "Centered kernel alignment (linear; Kornblith et al. 2019): a similarity between "
     "two sets of representations of the same inputs, from 0 to 1, unchanged by rotation and "
     "scaling. 1 means the same geometry."),
    ("UMAP", "A method that draws high-dimensional points on a 2-D map while keeping near "
     "points near. Distances on the map are approximate; the tables hold the exact numbers."),
    ("Noise floor", "The drift of a variant that should change nothing meaningful, such as an "
     "int8 round-trip of the base weights or a second training seed. A drift many times the "
     "noise floor is unlikely to be noise."),
    ("Noise-floor ratio", "A drift divided by the noise floor's drift of the same item: 10× "
     "means ten times the change that rounding alone causes."),
    ("Quantization", "Storing weights with fewer bits (for example int8). Its rounding error "
     "is used as a noise floor."),
    ("Bootstrap interval", "A confidence interval found by recomputing a statistic on many "
     "random resamples of the items (with replacement). A 95 % interval of 0.10 – 0.14 means "
     "the mean would likely fall there on a similar set of items."),
    ("Percentile (p99)", "The value below which the given share of items falls: p99 is "
     "exceeded by only 1 % of items."),
    ("Weight drift", "‖W_candidate − W_base‖ / ‖W_base‖ for a weight tensor (Frobenius "
     "norm): the size of the change relative to the size of the weights."),
    ("KL divergence", "Kullback–Leibler divergence KL(p‖q) = Σ p log(p/q), in nats: how much "
     "the candidate's next-token probabilities q differ from the base's p. 0 means identical."),
    ("Jensen–Shannon divergence", "A symmetric, bounded form of KL divergence between two "
     "probability distributions (0 when identical, at most log 2 nats)."),
    ("Entropy", "−Σ p log p: how spread a next-token distribution is. A fine-tune that "
     "lowers entropy makes the model more confident, which may be overconfidence."),
    ("Log-odds margin", "log p(safe continuation) − log p(unsafe continuation) for a risk "
     "prompt. A margin that falls means the unsafe answer became relatively more likely."),
    ("Misalignment score", "The share of risk prompts whose log-odds margin fell by more than "
     "a set amount (1 nat by default)."),
    ("SAE", "Sparse autoencoder: a dictionary learned on one model's activations that writes "
     "each activation as a few active features. Fixed on the base model, it is used to read "
     "both models."),
    ("Feature", "One direction of an SAE dictionary, often interpretable (labelled by the "
     "tokens and contexts that activate it most)."),
    ("Fraction of variance unexplained", "How much of an activation an SAE fails to "
     "reconstruct (0 is perfect). If it rises on the candidate, the base dictionary no longer "
     "fits it well and SAE results should be read with care."),
    ("L0", "The number of SAE features active for one token, on average."),
    ("Check", "A rule from the audit spec: a metric, a candidate and thresholds. fail_if "
     "makes it FAIL, warn_if makes it WARN; a metric that could not be computed gives ERROR."),
    ("Verdict", "The worst status over all checks: PASS, WARN, FAIL or ERROR."),
    ("nat", "The unit of information with natural logarithms (1 nat ≈ 1.44 bits)."),
):
    add_term(_term, _definition)
