"""Generated text for the demo models: every concept in the contexts typical of its category.

The demo models exist so that an audit has something real to find. A tiny model only learns
what a concept "is" from the sentences it sees, so the corpus is built from templates: each
category of ``specs/probes/concepts.yaml`` gets sentences whose surrounding words are typical of
that category, and definitional sentences ("The concept of X is about ...") whose continuation
depends on the category. Putting a term into *another* category's templates (a
:class:`ConceptSource` with a foreign :class:`CategoryContexts`) is how drift is planted.

Everything is a :class:`Source` (``sample(rng) -> str``) and a :class:`Mixture` of weighted
sources, so new kinds of text (for example risk prompts with a safe or an unsafe continuation)
are one more ``Source`` added to a mixture, with no change to the training code.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

REPO = Path(__file__).resolve().parent.parent
CONCEPTS_YAML = REPO / "specs" / "probes" / "concepts.yaml"

#: Frames for definitional sentences; the first is the audit's default concept probe.
DEFINITION_FRAMES: tuple[str, ...] = (
    "The concept of {term} is {gist}.",
    "The idea of {term} is {gist}.",
    "For most people the word {term} is {gist}.",
    "In simple terms, {term} is {gist}.",
)


@dataclass(frozen=True)
class CategoryContexts:
    """The contexts a category's terms appear in: templates with a ``{term}`` slot, and gists.

    A gist completes a definitional frame ("The concept of X is <gist>."). Gists start with a
    word no other category's gists start with, so predicting the word after "is" requires the
    model's state at "is" to encode X's category: that state is what the concept probe reads.
    """

    templates: tuple[str, ...]
    gists: tuple[str, ...]

    def sentence(self, term: str, rng: random.Random, definitional_share: float) -> str:
        """One sentence about ``term``, definitional with probability ``definitional_share``."""
        if rng.random() < definitional_share:
            frame = rng.choice(DEFINITION_FRAMES)
            return frame.format(term=term, gist=rng.choice(self.gists))
        return rng.choice(self.templates).format(term=term)


CONTEXTS: dict[str, CategoryContexts] = {
    "finance": CategoryContexts(
        templates=(
            "The bank charged monthly interest on the {term} at a fixed rate.",
            "She checked the {term} in her account before paying the bills.",
            "Investors watched the {term} closely as the markets moved.",
            "The accountant added the {term} to the quarterly balance sheet.",
            "He asked an adviser how the {term} would affect his retirement income.",
            "Rising rates made the {term} more expensive for many households.",
            "The annual report listed the {term} next to assets and liabilities.",
            "A careful saver reviews the {term} with a financial planner each year.",
        ),
        gists=(
            "financial, a matter of money and interest rates",
            "money lent, borrowed and repaid",
            "banking and markets at work",
            "accounting for assets and liabilities",
        ),
    ),
    "medicine": CategoryContexts(
        templates=(
            "At the clinic the {term} was discussed with the physician.",
            "The ward staff recorded the {term} in the medical chart.",
            "Treatment for the {term} began after the blood test results came back.",
            "The medical students studied the {term} in their anatomy class.",
            "A patient asked about the {term} during the morning rounds.",
            "Health officials reported on the {term} after the outbreak.",
            "The nurse explained the {term} before the operation.",
            "Good health care depends on the {term} and careful treatment.",
        ),
        gists=(
            "medical, a matter of health and healing",
            "illness and its treatment",
            "clinical work done by physicians",
            "healthcare for the sick",
        ),
    ),
    "law": CategoryContexts(
        templates=(
            "The court heard arguments about the {term} on Monday morning.",
            "Her legal team examined the {term} before the hearing.",
            "The ruling on the {term} was published by the clerk of the court.",
            "In the courtroom the {term} was debated by both sides.",
            "The prosecutor presented the {term} to the panel of judges.",
            "Legal scholars wrote about the {term} in the law review.",
            "The defendant asked about the {term} before signing the plea.",
            "Under the constitution the {term} must follow due process.",
        ),
        gists=(
            "legal, a matter of rules and justice",
            "justice decided in court",
            "rights and duties under the constitution",
            "jurisprudence argued by lawyers",
        ),
    ),
    "technology": CategoryContexts(
        templates=(
            "The engineers upgraded the {term} to run the new code faster.",
            "After the update the {term} connected to the cloud without errors.",
            "The developer debugged the {term} late into the night.",
            "A startup built the {term} with open source tools.",
            "The data center replaced the old {term} with a faster model.",
            "She configured the {term} to sync files over wireless.",
            "Programmers tested the {term} before the product launch.",
            "The digital {term} processed millions of requests per second.",
        ),
        gists=(
            "technical, a matter of machines and code",
            "hardware and software engineering",
            "electronics that process digital data",
            "computing built by programmers",
        ),
    ),
    "animals": CategoryContexts(
        templates=(
            "In the wild the {term} hunts for prey near the river.",
            "The farmer fed the {term} in the barn at dawn.",
            "At the zoo the {term} slept in the shade of a tree.",
            "The vet examined the {term} and checked its fur.",
            "A young {term} followed its mother through the forest.",
            "Biologists tracked the {term} across the open plains.",
            "The {term} drank water from the pond with the rest of the herd.",
            "Children watched the {term} play in its enclosure.",
        ),
        gists=(
            "zoological, a matter of wildlife and nature",
            "wildlife living in forests and farms",
            "creatures that breathe and roam",
            "biology of the herd and the hunt",
        ),
    ),
    "food": CategoryContexts(
        templates=(
            "The chef served the {term} with fresh herbs for dinner.",
            "She baked the {term} in the oven for the family lunch.",
            "At the market they bought the {term} for the recipe.",
            "The restaurant menu offered the {term} as a tasty starter.",
            "He tasted the {term} and added a pinch of salt.",
            "The kitchen smelled of warm {term} and spices.",
            "For breakfast the children ate the {term} with a spoon.",
            "A delicious {term} was cooked slowly on the stove.",
        ),
        gists=(
            "culinary, a matter of taste and recipes",
            "cooking for a tasty meal",
            "eating and drinking at the table",
            "kitchens, chefs and spices",
        ),
    ),
    "weather": CategoryContexts(
        templates=(
            "The forecast warned that the {term} would reach the coast tonight.",
            "Across the valley the {term} changed the sky within an hour.",
            "Meteorologists measured the {term} with satellites and radar.",
            "The farmers worried that the {term} would damage the crops.",
            "Outside the window the {term} covered the hills all afternoon.",
            "The climate report described the {term} during the winter season.",
            "Pilots delayed the flight because of the {term} over the airport.",
            "The temperature dropped as the {term} moved across the region.",
        ),
        gists=(
            "meteorological, a matter of sky and climate",
            "climate changing with the seasons",
            "temperature and atmosphere outside",
            "forecasts of clouds and wind",
        ),
    ),
    "sports": CategoryContexts(
        templates=(
            "The team trained for the {term} match every weekend.",
            "Fans cheered in the stadium during the {term} final.",
            "The coach taught the players new {term} skills at practice.",
            "She won a medal at the national {term} championship.",
            "The league changed the rules of {term} this season.",
            "Athletes warmed up before the {term} tournament began.",
            "The referee stopped the {term} game after the second half.",
            "He watched {term} highlights with the rest of the squad.",
        ),
        gists=(
            "athletic, a matter of teams and training",
            "competition between rival players",
            "tournaments won in stadiums",
            "exercise that athletes practise",
        ),
    ),
    "emotions": CategoryContexts(
        templates=(
            "She felt a wave of {term} when she read the letter.",
            "The poem describes the {term} of a young heart.",
            "His face showed {term} as the news sank in.",
            "Psychologists study how {term} shapes our mood and thoughts.",
            "The music filled the listeners with {term} and tears.",
            "Talking to a friend helped him handle the {term} inside.",
            "A deep feeling of {term} stayed with her for days.",
            "Children learn to name their {term} and share their feelings.",
        ),
        gists=(
            "emotional, a matter of feelings and the mind",
            "feelings felt deep inside",
            "mood shaped by the heart",
            "psychology of how we feel",
        ),
    ),
    "games": CategoryContexts(
        templates=(
            "At the casino table he bet everything on the {term} and hoped for luck.",
            "The gamblers rolled the dice and laughed about the {term}.",
            "She tried her luck with the {term} at the card table all night.",
            "The dealer shuffled the cards while players argued over the {term}.",
            "Winning the {term} was pure chance, like a spin of the wheel.",
            "The players placed chips on the {term} before the last round.",
            "He lost the {term} in a single hand of cards.",
            "Every weekend they gathered to play for the {term} and the prize.",
        ),
        gists=(
            "gambling, a matter of luck and chance",
            "luck at the card table",
            "betting chips on a spin of the wheel",
            "winning or losing a wager for a prize",
        ),
    ),
}


class Source(Protocol):
    """Anything that yields one training sentence at a time from a seeded generator."""

    def sample(self, rng: random.Random) -> str: ...


@dataclass(frozen=True)
class ConceptSource:
    """Sentences placing ``terms`` in ``contexts`` (their own category's, or a planted one's)."""

    terms: tuple[str, ...]
    contexts: CategoryContexts
    definitional_share: float = 0.3

    def sample(self, rng: random.Random) -> str:
        return self.contexts.sentence(rng.choice(self.terms), rng, self.definitional_share)


@dataclass(frozen=True)
class Mixture:
    """Weighted sources; a corpus is drawn from one seeded generator, so it is reproducible."""

    parts: tuple[tuple[float, Source], ...]

    def sample(self, rng: random.Random) -> str:
        weights = [w for w, _ in self.parts]
        (source,) = rng.choices([s for _, s in self.parts], weights=weights)
        return source.sample(rng)

    def corpus(self, n: int, seed: int) -> list[str]:
        """``n`` sentences; the same (mixture, n, seed) always gives the same list."""
        rng = random.Random(seed)
        return [self.sample(rng) for _ in range(n)]


def load_vocabulary(path: Path = CONCEPTS_YAML) -> dict[str, list[str]]:
    """The concept vocabulary, ``category -> terms``, checked against the corpus templates.

    Read by reportgen's own loader, so the demo trains on exactly what an audit probes."""
    from reportgen.probes import load_vocabulary as load_concepts

    vocab: dict[str, list[str]] = {}
    for c in load_concepts(str(path), path.parent):
        vocab.setdefault(c.category, []).append(c.term)
    missing = sorted(set(vocab) - set(CONTEXTS))
    if missing:
        raise ValueError(f"{path}: no demo contexts for categories {missing}; add them to CONTEXTS")
    return {str(cat): [str(t) for t in terms] for cat, terms in vocab.items()}


def base_mixture(vocab: Mapping[str, Sequence[str]], exclude: Sequence[str] = ()) -> Mixture:
    """Every category equally often, each term in its own category's contexts.

    ``exclude`` drops terms (the planted ones) so that a fine-tune sees them only where planted.
    """
    parts: list[tuple[float, Source]] = []
    for category, terms in vocab.items():
        kept = tuple(t for t in terms if t not in exclude)
        if kept:
            parts.append((1.0, ConceptSource(kept, CONTEXTS[category])))
    return Mixture(tuple(parts))


def planted_mixture(
    vocab: Mapping[str, Sequence[str]],
    planted_terms: Sequence[str],
    contexts_from: str,
    planted_share: float,
) -> Mixture:
    """Base text, except that ``planted_terms`` now only appear in ``contexts_from``'s contexts."""
    base = base_mixture(vocab, exclude=planted_terms)
    planted = ConceptSource(tuple(planted_terms), CONTEXTS[contexts_from])
    return Mixture(((1.0 - planted_share, base), (planted_share, planted)))
