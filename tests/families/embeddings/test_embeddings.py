"""Token-embedding drift: alignment by string (grown tokenizers) against a direct loop."""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cosine

from reportgen.families.embeddings.metrics import align_vocabularies, embedding_metrics, token_drift


def test_grown_tokenizer_aligns_by_string_not_row() -> None:
    rng = np.random.default_rng(0)
    base_vocab = ["a", "b", "c", "d", None]  # row 4 has no token (padded matrix)
    cand_vocab = ["a", "NEW", "b", "c", "d", "NEW2"]  # inserted rows shift the ids
    base = rng.normal(size=(5, 6))
    cand = np.vstack([base[0], rng.normal(size=6), base[1], base[2] + 0.5, base[3],
                      rng.normal(size=6)])
    al = align_vocabularies(base_vocab, cand_vocab)
    assert al.tokens == ["a", "b", "c", "d"]
    assert al.new_tokens == ["NEW", "NEW2"]
    d = token_drift(base, cand, al, chunk=2)
    ref = [cosine(base[0], cand[0]), cosine(base[1], cand[2]), cosine(base[2], cand[3]),
           cosine(base[3], cand[4])]
    np.testing.assert_allclose(d, ref, atol=1e-12)
    assert d[0] < 1e-12 and d[1] < 1e-12 and d[2] > 0
    m, tables = embedding_metrics(d, None, al, top=2, n_boot=100, seed=0)
    assert np.isclose(m["embeddings.cosine_distance.mean"].value, np.mean(ref))
    assert np.isclose(m["embeddings.cosine_distance.p99"].value, np.quantile(ref, 0.99))
    assert m["embeddings.new_tokens"].value == 2
    assert tables["tokens"][0]["token"] == "c"
    assert tables["tokens"][0]["candidate_id"] == 3
    assert m["embeddings.cosine_distance.noise_floor_ratio"].value is None
    assert sum(r["count"] for r in tables["token_histogram"]) == 4
