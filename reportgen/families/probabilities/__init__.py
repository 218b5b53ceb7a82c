"""Next-token probabilities: KL, Jensen–Shannon, entropy, top-1 agreement, logit shifts and
which tokens gained or lost probability mass, at every scored position of the domain and risk
texts (masked LMs: at masked positions)."""

from __future__ import annotations

from reportgen.core.family import Family, headline, lazy
from reportgen.families.probabilities import metrics as _metrics  # noqa: F401  (metric names)

FAMILY = Family(
    name="probabilities",
    title="Next-token probabilities",
    intro=("Both models read the domain and risk probe texts; at every scored position their "
           "predicted distributions over the vocabulary are compared (causal LMs: the next "
           "token; masked LMs: the token at a mask). KL divergence and Jensen–Shannon measure "
           "how far the prediction moved, entropy how confident each model is, top-1 "
           "agreement whether the favourite token stayed the same. How positions were chosen "
           "is stated in the appendix (analysis.probabilities.scheme)."),
    tables=("probabilities_probe_sets", "probabilities_kl_histogram", "probabilities_entropy",
            "probabilities_top_positions", "probabilities_tokens_gained",
            "probabilities_tokens_lost"),
    collectors=(lazy(f"{__name__}.pair", "collector"),),
    pair=lazy(f"{__name__}.pair", "analyse_probabilities"),
    view=lazy(f"{__name__}.view", "view"),
    headline=headline("probabilities.kl_base_candidate.mean", "mean KL(base‖cand)",
                      vs_floor=True),
    keywords=("probabilit", "masked lm", "language-model head"),
    limitations=lazy(f"{__name__}.pair", "limitations"),
    summary=lazy(f"{__name__}.view", "summary_clause"),
    glossary=(
        ("KL divergence", "Kullback–Leibler divergence KL(p‖q) = Σ p log(p/q), in nats: how "
         "much the candidate's next-token probabilities q differ from the base's p. 0 means "
         "identical."),
        ("Jensen–Shannon divergence", "A symmetric, bounded form of KL divergence between two "
         "probability distributions (0 when identical, at most log 2 nats)."),
        ("Entropy", "−Σ p log p: how spread a next-token distribution is. A fine-tune that "
         "lowers entropy makes the model more confident, which may be overconfidence."),
    ),
)
