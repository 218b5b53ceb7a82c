"""Neighbourhoods: k-NN, Jaccard and mutual k-NN against sklearn, Python sets and a direct
loop; chunked full-vocabulary search against the unchunked n × n computation; a grown
tokenizer aligned by string."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group
from sklearn.neighbors import NearestNeighbors

from reportgen.core.stats import bootstrap_ci
from reportgen.families.embeddings.metrics import align_vocabularies
from reportgen.families.neighbors.knn import jaccard_rows, knn
from reportgen.families.neighbors.metrics import (
    bootstrap_ci_jaccard,
    compare_neighbourhoods,
    concept_neighbour_metrics,
    full_vocabulary_jaccard,
    mutual_knn_alignment,
    neighbour_jaccard,
    token_neighbour_metrics,
)


def sk_knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """sklearn brute cosine k-NN, self excluded (kneighbors() without X leaves self out)."""
    nn = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute").fit(x)
    dist, idx = nn.kneighbors()
    return idx, 1.0 - dist


def set_jaccard(a, b) -> float:
    a, b = set(a), set(b)
    return len(a & b) / len(a | b)


def unchunked_knn(x: np.ndarray, k: int) -> np.ndarray:
    """The whole n × n cosine matrix at once, self set to −inf, stable sort."""
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = u @ u.T
    np.fill_diagonal(s, -np.inf)
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize(("n", "d", "k", "chunk"), [(300, 16, 7, 37), (101, 40, 10, 4096),
                                                     (50, 3, 1, 1), (64, 8, 63, 10)])
def test_knn_matches_sklearn_brute_cosine(n: int, d: int, k: int, chunk: int) -> None:
    x = np.random.default_rng(n).normal(size=(n, d))
    idx, sim = knn(x, k, chunk=chunk)
    ref_idx, ref_sim = sk_knn(x, k)
    assert idx.dtype == np.int64 and sim.dtype == np.float32
    assert idx.shape == sim.shape == (n, k)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(sim, ref_sim, atol=1e-5)
    assert np.all(np.diff(sim, axis=1) <= 0)  # best first
    assert not np.any(idx == np.arange(n)[:, None])  # self excluded


def test_knn_rows_subset_equals_full_search() -> None:
    x = np.random.default_rng(1).normal(size=(120, 10))
    full_idx, full_sim = knn(x, 5)
    rows = np.array([119, 3, 3, 60])
    idx, sim = knn(x, 5, chunk=3, rows=rows)
    np.testing.assert_array_equal(idx, full_idx[rows])
    np.testing.assert_allclose(sim, full_sim[rows], atol=1e-6)  # BLAS blocking: ulps


def test_knn_ties_go_to_the_lower_index_whatever_the_chunk() -> None:
    # Rows 1, 2, 4, 6 are copies of row 0; row 3 is orthogonal to all; row 5 is the negation.
    x = np.array([[1, 0], [1, 0], [1, 0], [0, 1], [1, 0], [-1, 0], [1, 0]], dtype=float)
    for chunk in (1, 2, 3, 7):
        idx, sim = knn(x, 3, chunk=chunk)
        np.testing.assert_array_equal(idx[0], [1, 2, 4])
        np.testing.assert_array_equal(idx[4], [0, 1, 2])
        np.testing.assert_array_equal(idx[3], [0, 1, 2])  # all at 0: lowest indices
        np.testing.assert_array_equal(idx[5], [3, 0, 1])  # 0 beats −1
        np.testing.assert_allclose(sim[5], [0, -1, -1])


def test_knn_rejects_k_that_cannot_exclude_self() -> None:
    with pytest.raises(ValueError, match=r"k must be between 1 and n − 1 = 4 \(self is excluded\)"):
        knn(np.eye(5), 5)


def test_jaccard_rows_against_python_sets() -> None:
    rng = np.random.default_rng(2)
    a = np.stack([rng.choice(30, 8, replace=False) for _ in range(200)])
    b = np.stack([rng.choice(30, 8, replace=False) for _ in range(200)])
    np.testing.assert_allclose(jaccard_rows(a, b), [set_jaccard(p, q) for p, q in zip(a, b,
                                                                                        strict=True)])
    np.testing.assert_array_equal(jaccard_rows(a, a), 1.0)


def test_mutual_knn_against_a_direct_loop() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(150, 12))
    y = x + 0.8 * rng.normal(size=x.shape)
    k = 10
    nx, ny = sk_knn(x, k)[0], sk_knn(y, k)[0]
    direct = np.mean([len(set(nx[i]) & set(ny[i])) / k for i in range(len(x))])
    assert mutual_knn_alignment(x, y, k, chunk=17) == pytest.approx(direct, abs=1e-12)
    assert 0.0 < direct < 1.0


def test_mutual_knn_is_one_for_the_same_space_rotated_and_scaled() -> None:
    x = np.random.default_rng(4).normal(size=(80, 6))
    q = ortho_group.rvs(6, random_state=0)
    assert mutual_knn_alignment(x, 3.0 * x @ q, 5) == pytest.approx(1.0)
    np.testing.assert_array_equal(neighbour_jaccard(x, x @ q, 5), 1.0)


@pytest.mark.parametrize("chunk", [1, 7, 13, 50, 100, 101, 1000])
def test_full_vocabulary_jaccard_chunked_equals_unchunked(chunk: int) -> None:
    rng = np.random.default_rng(5)
    e_base = rng.normal(size=(101, 24))
    e_cand = e_base + 0.7 * rng.normal(size=e_base.shape)
    k = 10
    ref = [set_jaccard(p, q) for p, q in zip(unchunked_knn(e_base, k), unchunked_knn(e_cand, k),
                                             strict=True)]
    np.testing.assert_allclose(full_vocabulary_jaccard(e_base, e_cand, k, chunk=chunk), ref)


def test_grown_tokenizer_neighbours_use_string_aligned_rows() -> None:
    """The candidate inserted two tokens (shifting every later row) and rotated the space;
    shared tokens kept their geometry except 'd', which moved next to 'a'."""
    rng = np.random.default_rng(6)
    base_vocab = [f"t{i}" for i in range(40)]
    base = rng.normal(size=(40, 8))
    q = ortho_group.rvs(8, random_state=1)
    cand_vocab = base_vocab[:5] + ["NEW1"] + base_vocab[5:20] + ["NEW2"] + base_vocab[20:]
    rot = base @ q
    rot[3] = rot[0] + 0.01 * rng.normal(size=8)  # t3 now sits on top of t0
    cand = np.vstack([rot[:5], 50 * rng.normal(size=(1, 8)), rot[5:20],
                      50 * rng.normal(size=(1, 8)), rot[20:]])
    al = align_vocabularies(base_vocab, cand_vocab)
    assert al.new_tokens == ["NEW1", "NEW2"]
    eb, ec = base[al.base_rows], cand[al.cand_rows]
    k = 4
    m, tables = token_neighbour_metrics(eb, ec, al.tokens, np.array([3, 0]), k=k,
                                        full_vocabulary=True, n_boot=200, seed=0)
    # independent: sklearn on the aligned rows, Python sets
    nb, nc = sk_knn(eb, k)[0], sk_knn(ec, k)[0]
    ref = np.array([set_jaccard(p, q) for p, q in zip(nb, nc, strict=True)])
    assert m["neighbors.tokens.jaccard.mean"].value == pytest.approx(ref.mean())
    direct_mknn = np.mean([len(set(p) & set(q)) / k for p, q in zip(nb, nc, strict=True)])
    assert m["neighbors.tokens.mutual_knn"].value == pytest.approx(direct_mknn)
    assert ref[3] < 1.0 and np.sum(ref < 1.0) < 12  # only t3 and those near it changed
    assert m["neighbors.tokens.top_movers.jaccard.mean"].value == pytest.approx(
        (ref[3] + ref[0]) / 2)
    movers = tables["neighbors_tokens"]
    assert [r["token"] for r in movers] == ["t3", "t0"]
    assert movers[0]["candidate_neighbours"][0]["label"] == "t0"
    assert movers[0]["text"].startswith("t3: ")
    listed = {n["label"] for r in movers + tables["rewired_tokens"]
              for n in r["base_neighbours"] + r["candidate_neighbours"]}
    assert not listed & {"NEW1", "NEW2"}
    assert tables["rewired_tokens"][0]["jaccard"] == pytest.approx(ref.min())
    assert sum(r["count"] for r in tables["neighbors_tokens_distribution"]) == 40
    # Comparing row i with row i blindly would not give these numbers.
    blind = full_vocabulary_jaccard(base, cand[:40], k)
    assert blind.mean() < ref.mean()


def test_top_movers_without_full_vocabulary_report_why_whole_space_is_missing() -> None:
    rng = np.random.default_rng(7)
    eb = rng.normal(size=(60, 8))
    ec = eb + 0.5 * rng.normal(size=eb.shape)
    tokens = [f"w{i}" for i in range(60)]
    m, tables = token_neighbour_metrics(eb, ec, tokens, np.array([5, 9, 2]), k=5, n_boot=0,
                                        seed=0)
    for name in ("neighbors.tokens.jaccard.mean", "neighbors.tokens.mutual_knn"):
        assert m[name].value is None
        assert m[name].error == ("computed only with analysis.neighborhoods.tokens: "
                                 "full-vocabulary")
    ref = [set_jaccard(p, q) for p, q in zip(sk_knn(eb, 5)[0], sk_knn(ec, 5)[0], strict=True)]
    assert m["neighbors.tokens.top_movers.jaccard.mean"].value == pytest.approx(
        np.mean([ref[5], ref[9], ref[2]]))
    assert [r["token"] for r in tables["neighbors_tokens"]] == ["w5", "w9", "w2"]
    assert sorted(r["token"] for r in tables["rewired_tokens"]) == ["w2", "w5", "w9"]
    js = [r["jaccard"] for r in tables["rewired_tokens"]]
    assert js == sorted(js)


def concept_space(seed: int = 8) -> tuple[np.ndarray, np.ndarray, list[str], list[str], list[int]]:
    """40 concepts in 4 categories; the candidate plants 3 of them in a new cluster."""
    rng = np.random.default_rng(seed)
    centres = 4 * rng.normal(size=(4, 16))
    cats = [f"c{i // 10}" for i in range(40)]
    base = np.vstack([centres[i // 10] + rng.normal(size=16) for i in range(40)])
    cand = base + 0.05 * rng.normal(size=base.shape)
    planted = [2, 17, 33]
    target = 4 * rng.normal(size=16)
    for i in planted:
        cand[i] = target + 0.3 * rng.normal(size=16)
    return base, cand, [f"term{i}" for i in range(40)], cats, planted


def test_concept_metrics_against_independent_computation() -> None:
    base, cand, terms, cats, planted = concept_space()
    k = 5
    m, tables = concept_neighbour_metrics(base, cand, terms, cats, k=k, n_boot=500, seed=1)
    nb, nc = sk_knn(base, k)[0], sk_knn(cand, k)[0]
    ref = np.array([set_jaccard(p, q) for p, q in zip(nb, nc, strict=True)])
    mean = m["neighbors.concepts.jaccard.mean"]
    assert mean.value == pytest.approx(ref.mean())
    assert mean.ci == bootstrap_ci(ref, 500, 1)
    assert mean.definition.startswith("Mean over concepts of |N_base ∩ N_candidate|")
    assert m["neighbors.concepts.jaccard.median"].value == pytest.approx(np.median(ref))
    assert m["neighbors.concepts.mutual_knn"].value == pytest.approx(
        np.mean([len(set(p) & set(q)) / k for p, q in zip(nb, nc, strict=True)]))
    for c in ("c0", "c1", "c2", "c3"):
        sel = np.array(cats) == c
        assert m[f"neighbors.concepts.category.{c}.jaccard.mean"].value == pytest.approx(
            ref[sel].mean())
    rows = {r["term"]: r for r in tables["neighbors_concepts"]}
    assert rows["term17"]["jaccard"] == pytest.approx(ref[17])
    assert sum(r["count"] for r in tables["neighbors_concepts_distribution"]) == 40


def test_planted_concepts_are_the_most_rewired_with_lists_side_by_side() -> None:
    base, cand, terms, cats, planted = concept_space()
    _, tables = concept_neighbour_metrics(base, cand, terms, cats, k=5, n_boot=0, seed=0,
                                          top=3)
    rewired = tables["rewired_concepts"]
    assert {r["term"] for r in rewired} == {terms[i] for i in planted}
    assert [r["rank"] for r in rewired] == [1, 2, 3]
    top = rewired[0]
    assert len(top["base_neighbours"]) == len(top["candidate_neighbours"]) == 5
    # the planted concepts now neighbour each other
    assert {n["label"] for n in top["candidate_neighbours"][:2]} <= {terms[i] for i in planted}
    b = ", ".join(f"{n['label']} {n['similarity']:.2f}" for n in top["base_neighbours"])
    c = ", ".join(f"{n['label']} {n['similarity']:.2f}" for n in top["candidate_neighbours"])
    assert top["text"] == f"{top['term']}: {b} → {c}"
    assert set(top["lost"]) == ({n["label"] for n in top["base_neighbours"]}
                                - {n["label"] for n in top["candidate_neighbours"]})
    assert tables["neighbors_concepts"][0]["term"] in {terms[i] for i in planted}


def test_discrete_bootstrap_matches_the_generic_bootstrap() -> None:
    rng = np.random.default_rng(9)
    k = 10
    shared = rng.choice(k + 1, size=3000, p=np.r_[0.02 * np.ones(10), 0.8])
    jac = shared / (2 * k - shared)
    fast = bootstrap_ci_jaccard(shared, k, 4000, seed=0)
    generic = bootstrap_ci(jac, 4000, seed=0)
    assert fast == bootstrap_ci_jaccard(shared, k, 4000, seed=0)
    assert fast[0] < jac.mean() < fast[1]
    np.testing.assert_allclose(fast, generic, atol=0.15 * (generic[1] - generic[0]))
    assert bootstrap_ci_jaccard(shared, k, 0, seed=0) is None


def test_compare_requires_aligned_items() -> None:
    msg = "base and candidate hold 5 and 6 items; align them first (tokens: by string)"
    with pytest.raises(ValueError) as err:
        compare_neighbourhoods(np.eye(5), np.ones((6, 5)), 2)
    assert str(err.value) == msg
