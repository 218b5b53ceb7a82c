"""Concept vocabularies (YAML and CSV), built-in packs, prompt texts and probe digests."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reportgen.core.errors import InputError, InputErrors
from reportgen.core.resources import probes_dir
from reportgen.spec.probes import (
    Concept,
    builtin_packs,
    concept_texts,
    load_vocabulary,
    probe_digest,
)


@pytest.fixture()
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture()
def packs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A built-in probe folder of our own, so the tests do not depend on the shipped packs."""
    root = tmp_path / "packs"
    (root / "risk").mkdir(parents=True)
    (root / "concepts.yaml").write_text("animals: [dog, cat]\n")
    (root / "tiny.csv").write_text("term,category\nsun,weather\n")
    (root / "risk" / "disclaimers.yaml").write_text("x: [y]\n")
    (root / "notes.txt").write_text("not a pack\n")
    monkeypatch.setattr("reportgen.spec.probes.probes_dir", lambda: root)
    return root


def bare(ref: str, base_dir: Path) -> str:
    """The error message of a vocabulary without the spec prefix."""
    with pytest.raises(InputError) as err:
        load_vocabulary(ref, base_dir, field="")
    return str(err.value)


# --- good files -------------------------------------------------------------------------------


def test_yaml_vocabulary_in_file_order(here: Path) -> None:
    (here / "v.yaml").write_text(
        "# categories in the order written\n"
        "food: [bread, cheese]\n"
        "animals:\n  - dog\n  - 'sea lion'\n"
    )
    assert load_vocabulary("v.yaml", here) == [
        Concept("bread", "food"), Concept("cheese", "food"),
        Concept("dog", "animals"), Concept("sea lion", "animals"),
    ]


def test_yml_suffix(here: Path) -> None:
    (here / "v.yml").write_text("a: [b]\n")
    assert load_vocabulary("v.yml", here) == [Concept("b", "a")]


def test_csv_vocabulary(here: Path) -> None:
    (here / "v.csv").write_bytes(
        "\ufeffCategory, Term ,note\n"  # BOM, any case, spaces, extra columns
        "animals,dog,\n"
        "\n"
        " animals , cat ,a pet\n"
        'food,"bread, rye",\n'.encode()
    )
    assert load_vocabulary("v.csv", here) == [
        Concept("dog", "animals"), Concept("cat", "animals"), Concept("bread, rye", "food"),
    ]


def test_relative_to_base_dir_not_cwd(here: Path) -> None:
    (here / "specs").mkdir()
    (here / "specs" / "v.yaml").write_text("a: [b]\n")
    assert load_vocabulary("v.yaml", here / "specs") == [Concept("b", "a")]


def test_env_var_and_home(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (here / "v.yaml").write_text("a: [b]\n")
    monkeypatch.setenv("RG_VOCAB_DIR", str(here))
    monkeypatch.setenv("HOME", str(here))
    assert load_vocabulary("${RG_VOCAB_DIR}/v.yaml", Path("/elsewhere")) == [Concept("b", "a")]
    assert load_vocabulary("~/v.yaml", Path("/elsewhere")) == [Concept("b", "a")]


# --- bad files: one line, the file as written, the line, what was expected ------------------


@pytest.mark.parametrize("name,content,expected", [
    ("v.yaml", "", "v.yaml: the file is empty; expected a mapping of category: [terms]"),
    ("v.yaml", "# nothing\n", "v.yaml: the file is empty; expected a mapping of category: "
                              "[terms]"),
    ("v.yaml", "a: [b\n", "v.yaml:2: YAML syntax error: expected ',' or ']', but got "
                          "'<stream end>'"),
    ("v.yaml", "- dog\n- cat\n", "v.yaml:1: expected a mapping of category: [terms], got a list"),
    ("v.yaml", "{}\n", "v.yaml:1: expected a mapping of category: [terms], got an empty mapping"),
    ("v.yaml", "a: [b]\nfood: []\n", "v.yaml:2: category 'food' has no terms; expected a list "
                                     "of terms"),
    ("v.yaml", "food:\n", "v.yaml:1: category 'food' has no terms; expected a list of terms"),
    ("v.yaml", "food: bread\n", "v.yaml:1: category 'food': expected a list of terms, "
                                "got 'bread'"),
    ("v.yaml", "food: [bread, {a: 1}]\n", "v.yaml:1: category 'food': expected a term (text), "
                                          "got a mapping; put it in quotes"),
    ("v.yaml", "numbers:\n  - one\n  - 2.50\n", "v.yaml:3: category 'numbers': expected a term "
                                               "(text), got 2.50; put it in quotes"),
    ("v.yaml", "food: [bread, '  ']\n", "v.yaml:1: category 'food': blank term; expected a word "
                                        "or phrase"),
    ("v.yaml", "2024: [x]\n", "v.yaml:1: expected a category name, got 2024"),
    ("v.yaml", "finance: [bank, loan]\ngeography:\n  - river\n  - bank\n",
     "v.yaml:4: term 'bank' is in both 'finance' and 'geography'; a term can belong to one "
     "category only"),
    ("v.yaml", "food: [bread, bread]\n", "v.yaml:1: term 'bread' is listed twice in 'food'"),
    ("v.yaml", "food: [bread]\nfood: [cheese]\n", "v.yaml:2: duplicate key 'food' (first at "
                                                  "line 1)"),
    ("v.yaml", "fin.ance: [bank]\n", "v.yaml:1: category 'fin.ance': a category name cannot "
                                     "contain '.', which separates the parts of metric names "
                                     "(concepts.category.NAME.cosine_distance.mean)"),
    ("v.csv", "term,category\nbank,fin.ance\n", "v.csv:2: category 'fin.ance': a category name "
                                                "cannot contain '.', which separates the parts "
                                                "of metric names "
                                                "(concepts.category.NAME.cosine_distance.mean)"),
    ("v.csv", "", "v.csv: the file is empty; expected a header row 'term,category'"),
    ("v.csv", "dog,animals\n", "v.csv:1: expected a header row 'term,category', "
                               "got 'dog,animals'"),
    ("v.csv", "term,kind\ndog,animals\n", "v.csv:1: missing column 'category'; expected a header "
                                          "row 'term,category'"),
    ("v.csv", "term,category\n", "v.csv: expected at least one term after the header"),
    ("v.csv", "term,category\ndog,animals\n,animals\n", "v.csv:3: category 'animals': blank "
                                                         "term; expected a word or phrase"),
    ("v.csv", "term,category\ndog\n", "v.csv:2: term 'dog' has no category"),
    ("v.csv", "term,category\ndog,animals\ncat,pets\ndog,pets\n",
     "v.csv:4: term 'dog' is in both 'animals' and 'pets'; a term can belong to one category "
     "only"),
    ("v.txt", "dog\n", "v.txt: expected a .yaml, .yml or .csv vocabulary file"),
])
def test_bad_vocabulary(here: Path, name: str, content: str, expected: str) -> None:
    (here / name).write_text(content)
    assert bare(name, here) == expected


def test_every_problem_of_a_file_at_once(here: Path) -> None:
    """One read names every bad category and term, in line order, each on its own line."""
    (here / "v.yaml").write_text("food: [bread, bread, 3]\nfin.ance: [bank]\nempty: []\n"
                                 "tools: [saw, bread]\nok: [cheese]\n")
    (here / "v.csv").write_text("term,category\ndog,animals\ndog,animals\ncat\nbank,fin.ance\n"
                                ",animals\nbread,food\n")
    dot = ("a category name cannot contain '.', which separates the parts of metric names "
           "(concepts.category.NAME.cosine_distance.mean)")
    with pytest.raises(InputErrors) as err:
        load_vocabulary("v.yaml", here, spec_file="audit.yaml")
    assert err.value.messages == [
        "audit.yaml: probes.concepts.vocabulary: v.yaml:1: term 'bread' is listed twice in "
        "'food'",
        "audit.yaml: probes.concepts.vocabulary: v.yaml:1: category 'food': expected a term "
        "(text), got 3; put it in quotes",
        f"audit.yaml: probes.concepts.vocabulary: v.yaml:2: category 'fin.ance': {dot}",
        "audit.yaml: probes.concepts.vocabulary: v.yaml:3: category 'empty' has no terms; "
        "expected a list of terms",
        "audit.yaml: probes.concepts.vocabulary: v.yaml:4: term 'bread' is in both 'food' and "
        "'tools'; a term can belong to one category only",
    ]
    assert str(err.value) == "\n".join(err.value.messages)
    with pytest.raises(InputErrors) as err:
        load_vocabulary("v.csv", here, field="")
    assert err.value.messages == [
        "v.csv:3: term 'dog' is listed twice in 'animals'",
        "v.csv:4: term 'cat' has no category",
        f"v.csv:5: category 'fin.ance': {dot}",
        "v.csv:6: category 'animals': blank term; expected a word or phrase",
    ]


def test_missing_file_and_folder(here: Path) -> None:
    assert bare("./words.yaml", here) == "./words.yaml: vocabulary file not found"
    (here / "dir.yaml").mkdir()
    assert bare("dir.yaml", here) == "dir.yaml: is a folder; expected a vocabulary file"


def test_message_names_the_spec_entry(here: Path) -> None:
    with pytest.raises(InputError) as err:
        load_vocabulary("words.yaml", here, spec_file="audit.yaml")
    assert str(err.value) == (
        "audit.yaml: probes.concepts.vocabulary: words.yaml: vocabulary file not found"
    )


def test_odd_characters_stay_on_one_line(here: Path) -> None:
    (here / "v.yaml").write_text('food: ["bread\\nrye", "bread\\nrye"]\n')
    assert bare("v.yaml", here) == "v.yaml:1: term 'bread\\nrye' is listed twice in 'food'"


# --- built-in packs ---------------------------------------------------------------------------


def test_builtin_packs(packs: Path) -> None:
    assert builtin_packs() == ["concepts", "risk/disclaimers", "tiny"]
    assert load_vocabulary("builtin:concepts", Path("/nowhere")) == [
        Concept("dog", "animals"), Concept("cat", "animals"),
    ]
    assert load_vocabulary("builtin:tiny", Path("/nowhere")) == [Concept("sun", "weather")]


@pytest.mark.parametrize("ref,expected", [
    ("builtin:concept", "unknown built-in pack 'concept'. Did you mean 'concepts'? "
                        "Available: concepts, risk/disclaimers, tiny"),
    ("builtin:nosuch", "unknown built-in pack 'nosuch'. Available: concepts, risk/disclaimers, "
                       "tiny"),
    ("builtin:notes", "unknown built-in pack 'notes'. Available: concepts, risk/disclaimers, "
                      "tiny"),
    ("builtin:../secret", "unknown built-in pack '../secret'. Available: concepts, "
                          "risk/disclaimers, tiny"),
    ("builtin:/etc/passwd", "unknown built-in pack '/etc/passwd'. Available: concepts, "
                            "risk/disclaimers, tiny"),
])
def test_unknown_builtin(packs: Path, ref: str, expected: str) -> None:
    (packs.parent / "secret.yaml").write_text("a: [b]\n")  # outside the packs folder
    assert bare(ref, packs) == expected


def test_no_builtin_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> Path:
        raise FileNotFoundError("reportgen's data files are missing; reinstall the package")

    monkeypatch.setattr("reportgen.spec.probes.probes_dir", missing)
    assert builtin_packs() == []
    assert bare("builtin:concepts", Path(".")) == (
        "reportgen's data files are missing; reinstall the package"
    )


def test_shipped_concepts_pack_loads() -> None:
    try:
        shipped = probes_dir() / "concepts.yaml"
    except FileNotFoundError:
        shipped = Path("/missing")
    if not shipped.is_file():
        pytest.skip("specs/probes/concepts.yaml is not there yet")
    concepts = load_vocabulary("builtin:concepts", Path("."))
    assert len(concepts) >= 10
    assert len({c.category for c in concepts}) >= 2
    assert "concepts" in builtin_packs()


# --- texts and digests ------------------------------------------------------------------------


def test_concept_texts_replace_only_term() -> None:
    concepts = [Concept("dog", "animals"), Concept("{x}", "odd")]
    assert concept_texts(concepts, "A {term} is {not} a {{term}} {term}") == [
        "A dog is {not} a {dog} dog",
        "A {x} is {not} a {{x}} {x}",
    ]


def test_probe_digest_is_canonical_and_stable() -> None:
    texts = ["The concept of dog is", "The concept of cat is"]
    digest = probe_digest("concepts", texts, {"categories": ["animals", "animals"], "v": 1})
    canonical = json.dumps(
        {"extra": {"categories": ["animals", "animals"], "v": 1}, "kind": "concepts",
         "texts": texts},
        separators=(",", ":"),
    )
    assert digest == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    # pinned: cache keys and certificates cite this value, so it must never drift
    assert digest == "sha256:88e9c18a38049f414cc4b8ad2aefa4d898adac9c198dd1865b317e30d1ad5310"
    assert digest == probe_digest("concepts", list(texts), {"v": 1, "categories": ["animals"] * 2})
    assert probe_digest("concepts", texts) == probe_digest("concepts", texts, {})
    assert probe_digest("concepts", texts[::-1]) != probe_digest("concepts", texts)
    assert probe_digest("domains", texts) != probe_digest("concepts", texts)


# --- fuzz: a broken vocabulary is an InputError of one line, never a traceback ----------------

TOKENS = st.sampled_from(["a", "dog", ": ", "- ", "\n", "  ", "[", "]", "{", "}", ",", '"', "'",
                          "&x ", "*x", "term", "category", "1", "yes", "~", "\t", "#", "\r"])


@settings(max_examples=300, deadline=None)
@given(st.lists(TOKENS | st.text(max_size=4), max_size=30).map("".join),
       st.sampled_from(["v.yaml", "v.csv"]))
def test_fuzz_vocabulary(text: str, name: str) -> None:
    folder = Path(tempfile.mkdtemp())
    (folder / name).write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        concepts = load_vocabulary(name, folder)
    except InputError as e:  # one line per problem, each naming the file
        assert isinstance(e, InputErrors)
        assert str(e).splitlines() == e.messages
        assert all(m.startswith(f"probes.concepts.vocabulary: {name}") for m in e.messages)
    else:
        assert concepts and all(c.term.strip() and c.category.strip() for c in concepts)
