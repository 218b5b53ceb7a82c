"""The probe sets one model reads in its single capture pass: the concept prompts (optional),
each domain's texts and each risk set's prompts, with their digests and the capture rows each
set occupies (``slices()``: ``concepts``, ``domains.NAME``, ``risk.NAME``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reportgen.core.records import ProbeInfo
from reportgen.spec.chat import ChatTemplate
from reportgen.spec.load import LoadedSpec


@dataclass
class DomainProbe:
    name: str
    texts: list[str]
    info: ProbeInfo


@dataclass
class RiskProbe:
    """A risk set: its prompts (read as probe texts) with safe and unsafe continuations."""

    name: str
    prompts: list[Any]  # metrics.behavior.RiskPrompt
    info: ProbeInfo

    @property
    def texts(self) -> list[str]:
        return [p.prompt for p in self.prompts]

@dataclass
class ProbeSet:
    """Every probe set one model reads in one pass: the concept prompts (none when the spec
    has no ``probes.concepts``: ``info`` is then None), then the domain and risk sets."""

    terms: list[str]
    categories: list[str]
    texts: list[str]
    info: ProbeInfo | None
    domains: list[DomainProbe] = field(default_factory=list)
    risk: list[RiskProbe] = field(default_factory=list)

    @property
    def has_concepts(self) -> bool:
        return self.info is not None

    @property
    def all_texts(self) -> list[str]:
        """Every text one model reads: the concepts first, then each domain, then each risk
        set's prompts, in spec order."""
        return [*self.texts, *(t for d in self.domains for t in d.texts),
                *(t for r in self.risk for t in r.texts)]

    def slices(self) -> dict[str, slice]:
        """Rows of a capture per probe set: ``concepts`` (when there are concepts),
        ``domains.NAME``, ``risk.NAME``."""
        out = {"concepts": slice(0, len(self.texts))} if self.has_concepts else {}
        at = len(self.texts)
        for prefix, sets in (("domains", self.domains), ("risk", self.risk)):
            for d in sets:
                out[f"{prefix}.{d.name}"] = slice(at, at + len(d.texts))
                at += len(d.texts)
        return out

    @property
    def capture_digest(self) -> str:
        """Keys the capture cache: the concept digest alone, else the digest of all sets."""
        if self.info is not None and not self.domains and not self.risk:
            return self.info.digest
        from reportgen.spec.probes import probe_digest

        return probe_digest("capture", [i.digest for i in self.infos])

    @property
    def infos(self) -> list[ProbeInfo]:
        concepts = [self.info] if self.info is not None else []
        return [*concepts, *(d.info for d in self.domains), *(r.info for r in self.risk)]

def build_probes(loaded: LoadedSpec) -> ProbeSet:
    from reportgen.spec.probes import concept_texts, load_vocabulary, probe_digest

    cp = loaded.spec.probes.concepts
    if cp is None:
        return ProbeSet([], [], [], None, domain_probes(loaded), risk_probes(loaded))
    concepts = load_vocabulary(cp.vocabulary, loaded.base_dir, spec_file=loaded.file)
    texts = concept_texts(concepts, cp.template)
    cats = [c.category for c in concepts]
    digest = probe_digest("concepts", texts, {"categories": cats})
    info = ProbeInfo("concepts", "concepts", len(texts), digest,
                     {"template": cp.template, "vocabulary": cp.vocabulary,
                      "categories": sorted(set(cats))})
    return ProbeSet([c.term for c in concepts], cats, texts, info, domain_probes(loaded),
                        risk_probes(loaded))

def domain_probes(loaded: LoadedSpec) -> list[DomainProbe]:
    from reportgen.spec.probes import load_texts, probe_digest

    out = []
    for i, d in enumerate(loaded.spec.probes.domains):
        texts = load_texts(d.texts, loaded.base_dir, field=f"probes.domains[{i}].texts",
                           spec_file=loaded.file)
        digest = probe_digest("domain", texts, {"name": d.name})
        out.append(DomainProbe(d.name, texts, ProbeInfo(
            f"domains.{d.name}", "domain", len(texts), digest,
            {"texts": d.texts, "representation": "mean over non-padding tokens"})))
    return out

def risk_probes(loaded: LoadedSpec) -> list[RiskProbe]:
    from reportgen.spec.probes import load_risk_prompts, probe_digest

    chat = loaded.facts.chat if loaded.facts is not None else None
    out = []
    for i, r in enumerate(loaded.spec.probes.risk):
        prompts = load_risk_prompts(r.prompts, loaded.base_dir, r.name,
                                    field=f"probes.risk[{i}].prompts", spec_file=loaded.file)
        details: dict[str, Any] = {"prompts": r.prompts,
                                   "representation": "mean over non-padding tokens"}
        if chat is not None:
            prompts = _rendered(prompts, chat, f"{loaded.file}: probes.risk[{i}].prompts")
            details["chat_template"] = chat.record()
        digest = probe_digest("risk", [p.prompt for p in prompts], {
            "name": r.name, "safe": [list(p.safe) for p in prompts],
            "unsafe": [list(p.unsafe) for p in prompts]})
        out.append(RiskProbe(r.name, prompts, ProbeInfo(
            f"risk.{r.name}", "risk", len(prompts), digest, details)))
    return out

def _rendered(prompts: list[Any], chat: ChatTemplate, where: str) -> list[Any]:
    """The prompts as ``chat`` renders them (a user turn and the assistant-turn prefix)."""
    from dataclasses import replace

    from reportgen.spec.chat import render

    texts = render(chat, [p.prompt for p in prompts], where)
    return [replace(p, prompt=t) for p, t in zip(prompts, texts, strict=True)]
