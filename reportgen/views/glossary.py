"""The glossary at the end of the certificate: the words a non-specialist reader meets.

One list for every certificate, in alphabetical order, so a regulator finds the same
definition in every release; a term the page does not use costs a line and confuses no one.
The general terms are here; each family brings its own (``Family.glossary``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from reportgen.core.family import Family


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


def glossary(families: Iterable[Family] = ()) -> list[Term]:
    """The general terms and those of ``families``, sorted case-insensitively."""
    terms = dict(_TERMS)
    for fam in families:
        for term, definition in fam.glossary:
            terms.setdefault(term.casefold(), Term(term, definition))
    return sorted(terms.values(), key=lambda t: t.term.casefold())


for _term, _definition in (
    ("Base model", "The model before fine-tuning; every other model is compared with it."),
    ("Candidate", "A model compared with the base: usually the fine-tune to be released."),
    ("Checkpoint", "The files that hold a model's weights and configuration."),
    ("Digest", "A SHA-256 fingerprint of a file or of a set of files. Changing one byte "
     "changes the digest, so a digest names exact checkpoint bytes; anyone can recompute it "
     "(for example with sha256sum) and compare."),
    ("Certificate digest", "The SHA-256 digest of certificate.json. This page and the PDF "
     "are rendered from that file alone, so the digest identifies what they show."),
    ("Hidden state", "The vector a model computes for a token at one layer. The certificate "
     "compares the hidden states of the base and a candidate for the same input."),
    ("Layer", "One stage of the network. Layer 0 is the embedding output; later layers are "
     "deeper. Drift by layer shows where in the network a change sits."),
    ("Cosine distance", "1 − cos(a, b) for two vectors a and b: 0 when they point the same "
     "way, 1 when they are orthogonal, up to 2 when opposite. Used here as 'how far a "
     "representation moved'."),
    ("Drift", "How far something moved between the base and a candidate, measured here as "
     "cosine distance (representations) or relative norm of the change (weights)."),
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
    ("Check", "A rule from the audit spec: a metric, a candidate and thresholds. fail_if "
     "makes it FAIL, warn_if makes it WARN; a metric that could not be computed gives ERROR."),
    ("Verdict", "The worst status over all checks: PASS, WARN, FAIL or ERROR."),
    ("nat", "The unit of information with natural logarithms (1 nat ≈ 1.44 bits)."),
):
    add_term(_term, _definition)
