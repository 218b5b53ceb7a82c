"""SAE folders written here in SAELens and sparsify layouts, encoded against the published math.

The references are numpy transcriptions of the libraries' own code, independent of
reportgen.sae: SAELens ``sae_lens/saes/{sae,standard_sae,topk_sae,jumprelu_sae,gated_sae}.py``
(``process_sae_in``, ``_setup_activation_normalization``, ``encode``, ``decode``) and sparsify
``sparsify/sparse_coder.py`` + ``fused_encoder.py`` (``relu(encoder(x - b_dec))``, top-k,
``decode + b_dec``, ``+ x @ W_skip.T``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from reportgen.core.errors import InputError
from reportgen.sae import SAE, check_width, fvu, l0, load_sae, save_saelens

D_IN, D_SAE, K = 12, 40, 5


# ----------------------------------------------------------------------------- writers


def write_folder(folder: Path, cfg: dict, tensors: dict, weights: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cfg.json").write_text(json.dumps(cfg))
    save_file({k: torch.as_tensor(v).contiguous() for k, v in tensors.items()},
              str(folder / weights))
    return folder


def random_weights(arch: str, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = {
        "W_enc": rng.normal(size=(D_IN, D_SAE)).astype(np.float32) / 3,
        "W_dec": rng.normal(size=(D_SAE, D_IN)).astype(np.float32) / 3,
        "b_dec": rng.normal(size=D_IN).astype(np.float32) / 2,
    }
    if arch == "gated":
        for name in ("b_gate", "r_mag", "b_mag"):
            w[name] = rng.normal(size=D_SAE).astype(np.float32) / 4
    else:
        w["b_enc"] = rng.normal(size=D_SAE).astype(np.float32) / 4
    if arch == "jumprelu":  # some negative thresholds: SAELens 6 clamps them with relu()
        w["threshold"] = rng.normal(0.3, 0.4, size=D_SAE).astype(np.float32)
    return w


def v6_cfg(arch: str, **extra) -> dict:
    cfg = {
        "architecture": arch, "d_in": D_IN, "d_sae": D_SAE, "dtype": "float32",
        "device": "cpu", "apply_b_dec_to_input": True, "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": {"sae_lens_version": "6.5.1", "hook_name": "blocks.3.hook_resid_post",
                     "model_name": "tiny-gpt2"},
    }
    if arch == "topk":
        cfg |= {"k": K, "rescale_acts_by_decoder_norm": False}
    return cfg | extra


def activations(n: int = 64, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, D_IN)) * 2 + 0.5).astype(np.float32)


# ----------------------------------------------------------------------------- references


def ref_in(x, cfg, b_dec):
    """SAELens process_sae_in: run-time normalisation, then subtract b_dec if configured."""
    x = x.astype(np.float64)
    mode, stats = cfg.get("normalize_activations", "none"), None
    if mode == "constant_norm_rescale":
        coeff = np.sqrt(x.shape[1]) / np.linalg.norm(x, axis=1, keepdims=True)
        x, stats = x * coeff, coeff
    elif mode == "layer_norm":
        mu = x.mean(axis=1, keepdims=True)
        x = x - mu
        std = x.std(axis=1, ddof=1, keepdims=True)  # torch.std is unbiased
        x, stats = x / (std + 1e-5), (mu, std)
    return x - b_dec * cfg.get("apply_b_dec_to_input", True), stats


def ref_out(out, cfg, stats):
    mode = cfg.get("normalize_activations", "none")
    if mode == "constant_norm_rescale":
        return out / stats
    if mode == "layer_norm":
        return out * stats[1] + stats[0]
    return out


def topk_dense(h, k):
    idx = np.argsort(-h, axis=1)[:, :k]
    out = np.zeros_like(h)
    np.put_along_axis(out, idx, np.take_along_axis(h, idx, axis=1), axis=1)
    return out


def ref_encode(x, cfg, w):
    sae_in, _ = ref_in(x, cfg, w["b_dec"])
    arch = cfg["architecture"]
    if arch == "gated":
        gate = (sae_in @ w["W_enc"] + w["b_gate"]) > 0
        mag = sae_in @ (w["W_enc"] * np.exp(w["r_mag"])) + w["b_mag"]
        return gate * np.maximum(mag, 0)
    h = sae_in @ w["W_enc"] + w["b_enc"]
    if arch == "topk":
        if cfg.get("rescale_acts_by_decoder_norm"):
            h = h * np.linalg.norm(w["W_dec"], axis=1)
        return np.maximum(topk_dense(h, cfg["k"]), 0)  # topk, then relu on the values
    if arch == "jumprelu":
        return np.maximum(h, 0) * (h > np.maximum(w["threshold"], 0))
    return np.maximum(h, 0)


def ref_reconstruct(x, cfg, w):
    f = ref_encode(x, cfg, w)
    if cfg.get("rescale_acts_by_decoder_norm"):
        f = f / np.linalg.norm(w["W_dec"], axis=1)
    out = f @ w["W_dec"] + w["b_dec"]
    return ref_out(out, cfg, ref_in(x, cfg, w["b_dec"])[1])


def assert_close(got: torch.Tensor, want: np.ndarray, tol: float = 2e-5) -> None:
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), want, rtol=tol, atol=tol)


# ----------------------------------------------------------------------------- SAELens


@pytest.mark.parametrize("arch", ["standard", "topk", "jumprelu", "gated"])
@pytest.mark.parametrize(
    "norm",
    ["none", "expected_average_only_in", "constant_norm_rescale", "layer_norm",
     "covariance_whitening"],
)
def test_saelens_encode_and_reconstruct_match_published_formulas(tmp_path, arch, norm):
    cfg, w = v6_cfg(arch, normalize_activations=norm), random_weights(arch)
    sae = load_sae(write_folder(tmp_path / "sae", cfg, w, "sae_weights.safetensors"))
    x = activations()
    f = sae.encode(x)
    assert (sae.architecture, sae.d_in, sae.d_sae) == (arch, D_IN, D_SAE)
    assert tuple(f.shape) == (64, D_SAE)
    assert_close(f, ref_encode(x, cfg, w))
    assert_close(sae.reconstruct(x), ref_reconstruct(x, cfg, w), tol=1e-4)
    assert 0 < l0(f) < D_SAE


def test_topk_keeps_k_features_and_jumprelu_respects_thresholds(tmp_path):
    x = activations()
    topk = load_sae(write_folder(tmp_path / "t", v6_cfg("topk"), random_weights("topk"),
                                 "sae_weights.safetensors"))
    assert ((topk.encode(x) != 0).sum(dim=1) <= K).all()
    w = random_weights("jumprelu")
    jump = load_sae(write_folder(tmp_path / "j", v6_cfg("jumprelu"), w, "sae_weights.safetensors"))
    f = jump.encode(x).numpy()
    assert np.all((f == 0) | (f > np.maximum(w["threshold"], 0)))


def test_apply_b_dec_to_input_false_and_rescale_by_decoder_norm(tmp_path):
    x = activations()
    for i, cfg in enumerate([
        v6_cfg("standard", apply_b_dec_to_input=False),
        v6_cfg("topk", rescale_acts_by_decoder_norm=True),
    ]):
        w = random_weights(cfg["architecture"], seed=i)
        sae = load_sae(write_folder(tmp_path / str(i), cfg, w, "sae_weights.safetensors"))
        assert_close(sae.encode(x), ref_encode(x, cfg, w))
        assert_close(sae.reconstruct(x), ref_reconstruct(x, cfg, w), tol=1e-4)


def test_nested_metadata_gives_hook_info(tmp_path):
    cfg = v6_cfg("standard")
    sae = load_sae(write_folder(tmp_path / "s", cfg, random_weights("standard"),
                                "sae_weights.safetensors"))
    assert (sae.hook.name, sae.hook.layer, sae.hook.model_name) == (
        "blocks.3.hook_resid_post", 3, "tiny-gpt2")
    assert sae.source == "saelens"


def flat_topk_cfg() -> dict:
    """A SAELens 5.x config: no version, activation_fn_str topk, old hook key names."""
    return {
        "architecture": "standard", "d_in": D_IN, "d_sae": D_SAE, "dtype": "float32",
        "device": "cpu", "activation_fn_str": "topk", "activation_fn_kwargs": {"k": K},
        "apply_b_dec_to_input": True, "finetuning_scaling_factor": False,
        "hook_point": "blocks.2.hook_resid_pre", "hook_point_layer": 2,
        "model_name": "gpt2", "normalize_activations": False, "context_size": 128,
    }


def test_flat_pre6_config_is_read_like_the_nested_one(tmp_path):
    w = random_weights("topk")
    flat = load_sae(write_folder(tmp_path / "flat", flat_topk_cfg(), w, "sae_weights.safetensors"))
    nested = load_sae(write_folder(tmp_path / "new", v6_cfg("topk"), w, "sae_weights.safetensors"))
    assert (flat.architecture, flat.k, flat.normalize_activations) == ("topk", K, "none")
    assert (flat.hook.name, flat.hook.layer, flat.hook.model_name) == (
        "blocks.2.hook_resid_pre", 2, "gpt2")
    x = activations()
    assert torch.equal(flat.encode(x), nested.encode(x))
    assert_close(flat.encode(x), ref_encode(x, v6_cfg("topk"), w))


def test_flat_config_variants(tmp_path):
    """Boolean normalize_activations, no architecture key, tanh-relu, hook_layer from name."""
    w = random_weights("standard")
    cfg = {"d_in": D_IN, "d_sae": D_SAE, "activation_fn_str": "tanh-relu",
           "hook_name": "blocks.7.hook_mlp_out", "normalize_activations": True}
    sae = load_sae(write_folder(tmp_path / "s", cfg, w, "sae_weights.safetensors"))
    assert (sae.architecture, sae.normalize_activations, sae.hook.layer) == (
        "standard", "expected_average_only_in", 7)
    assert sae.notes == [
        "normalize_activations 'expected_average_only_in' is folded into the weights when "
        "SAELens training ends; as in SAELens, nothing is applied when encoding"
    ]
    x = activations()
    h = (x.astype(np.float64) - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    assert_close(sae.encode(x), np.tanh(np.maximum(h, 0)))  # SAELens 5.x get_activation_fn


def test_jumprelu_log_threshold_and_pre6_finetuning_scale(tmp_path):
    w = random_weights("jumprelu")
    w["threshold"] = np.abs(w["threshold"]) + 0.01
    logged = {k: v for k, v in w.items() if k != "threshold"} | {
        "log_threshold": np.log(w["threshold"])}
    sae = load_sae(write_folder(tmp_path / "j", v6_cfg("jumprelu"), logged,
                                "sae_weights.safetensors"))
    x = activations()
    assert_close(sae.encode(x), ref_encode(x, v6_cfg("jumprelu"), w))

    ws = random_weights("standard")
    scale = np.linspace(0.5, 1.5, D_SAE).astype(np.float32)
    cfg = {"architecture": "standard", "d_in": D_IN, "d_sae": D_SAE,
           "finetuning_scaling_factor": True}
    sae = load_sae(write_folder(tmp_path / "s", cfg, ws | {"scaling_factor": scale},
                                "sae_weights.safetensors"))
    f = ref_encode(x, v6_cfg("standard"), ws)
    assert_close(sae.reconstruct(x), (f * scale) @ ws["W_dec"] + ws["b_dec"], tol=1e-4)

    ones = load_sae(write_folder(tmp_path / "o", v6_cfg("standard"),
                                 ws | {"scaling_factor": np.ones(D_SAE, np.float32)},
                                 "sae_weights.safetensors"))
    assert ones.finetuning_scaling_factor is None
    folder = write_folder(tmp_path / "u", v6_cfg("standard"), ws | {"scaling_factor": scale},
                          "sae_weights.safetensors")
    with pytest.raises(InputError) as err:
        load_sae(folder)
    assert str(err.value) == (
        f"{folder / 'sae_weights.safetensors'}: tensor 'scaling_factor' is not all ones "
        "but cfg.json has no finetuning_scaling_factor"
    )


def test_half_precision_weights_are_applied_in_float32(tmp_path):
    w = {k: torch.from_numpy(v).to(torch.bfloat16) for k, v in random_weights("standard").items()}
    sae = load_sae(write_folder(tmp_path / "b", v6_cfg("standard", dtype="bfloat16"), w,
                                "sae_weights.safetensors"))
    as32 = {k: v.float().numpy() for k, v in w.items()}
    x = activations()
    assert_close(sae.encode(x), ref_encode(x, v6_cfg("standard"), as32))


def test_numpy_and_torch_inputs_agree_and_decode_without_input(tmp_path):
    w = random_weights("standard")
    sae = load_sae(write_folder(tmp_path / "s", v6_cfg("standard"), w, "sae_weights.safetensors"))
    x = activations()
    f = sae.encode(x)
    assert torch.equal(f, sae.encode(torch.from_numpy(x).double()))
    assert_close(sae.decode(f), f.numpy().astype(np.float64) @ w["W_dec"] + w["b_dec"])
    with pytest.raises(ValueError, match=r"expected activations of shape \(n, 12\), got \(3, 5\)"):
        sae.encode(np.zeros((3, 5), np.float32))


def test_decode_of_a_per_row_normalising_sae_needs_the_input(tmp_path):
    cfg = v6_cfg("standard", normalize_activations="layer_norm")
    sae = load_sae(write_folder(tmp_path / "s", cfg, random_weights("standard"),
                                "sae_weights.safetensors"))
    with pytest.raises(ValueError) as err:
        sae.decode(sae.encode(activations()))
    assert str(err.value) == (
        "decode needs the encoded activations x for this SAE "
        "(normalize_activations 'layer_norm'); use reconstruct(x)"
    )


# ----------------------------------------------------------------------------- sparsify


def sparsify_folder(tmp_path: Path, skip: bool = False, **cfg_extra) -> tuple[Path, dict]:
    rng = np.random.default_rng(3)
    w = {
        "encoder.weight": rng.normal(size=(D_SAE, D_IN)).astype(np.float32) / 3,
        "encoder.bias": rng.normal(size=D_SAE).astype(np.float32) / 4,
        "W_dec": rng.normal(size=(D_SAE, D_IN)).astype(np.float32) / 3,
        "b_dec": rng.normal(size=D_IN).astype(np.float32),
    }
    if skip:
        w["W_skip"] = rng.normal(size=(D_IN, D_IN)).astype(np.float32) / 5
    cfg = {"activation": "topk", "expansion_factor": 32, "normalize_decoder": True,
           "num_latents": D_SAE, "k": K, "multi_topk": False, "skip_connection": skip,
           "transcode": False, "d_in": D_IN} | cfg_extra
    return write_folder(tmp_path / "layers.4", cfg, w, "sae.safetensors"), w


def ref_sparsify(x, w, skip):
    """sparsify: pre = relu(encoder(x - b_dec)); top-k; sum of W_dec rows + b_dec (+ skip)."""
    x = x.astype(np.float64)
    pre = np.maximum((x - w["b_dec"]) @ w["encoder.weight"].T + w["encoder.bias"], 0)
    f = topk_dense(pre, K)
    out = f @ w["W_dec"] + w["b_dec"]
    return f, out + (x @ w["W_skip"].T if skip else 0)


@pytest.mark.parametrize("skip", [False, True])
def test_sparsify_encode_and_reconstruct(tmp_path, skip):
    folder, w = sparsify_folder(tmp_path, skip=skip)
    sae = load_sae(folder)
    x = activations()
    f_ref, out_ref = ref_sparsify(x, w, skip)
    assert (sae.source, sae.architecture, sae.d_in, sae.d_sae, sae.k) == (
        "sparsify", "topk", D_IN, D_SAE, K)
    assert (sae.hook.name, sae.hook.layer) == ("layers.4", 4)
    assert_close(sae.encode(x), f_ref)
    assert_close(sae.reconstruct(x), out_ref, tol=1e-4)
    if skip:
        with pytest.raises(ValueError) as err:
            sae.decode(sae.encode(x))
        assert str(err.value) == (
            "decode needs the encoded activations x for this SAE (a skip connection); "
            "use reconstruct(x)")


def test_sparsify_latents_from_expansion_factor(tmp_path):
    folder, _ = sparsify_folder(tmp_path, num_latents=0, expansion_factor=2)
    with pytest.raises(InputError) as err:
        load_sae(folder)
    assert str(err.value) == (
        f"{folder / 'sae.safetensors'}: tensor 'encoder.weight' has shape (40, 12) "
        "but cfg.json (d_sae 24, d_in 12) implies (24, 12)"
    )


# ----------------------------------------------------------------------------- saving


def test_save_saelens_round_trip_and_layout(tmp_path):
    w = random_weights("topk")
    sae = load_sae(write_folder(tmp_path / "src", v6_cfg("topk"), w, "sae_weights.safetensors"))
    out = tmp_path / "saved" / "layer3"
    save_saelens(sae, out, "blocks.3.hook_resid_post", 3, {"model_name": "tiny", "corpus": "c"})
    cfg = json.loads((out / "cfg.json").read_text())
    # Every field of SAELens 6's TopKSAEConfig, and a version so it is not read as pre-6.0.
    assert {k: cfg[k] for k in cfg if k != "metadata"} == {
        "architecture": "topk", "d_in": D_IN, "d_sae": D_SAE, "dtype": "float32",
        "device": "cpu", "apply_b_dec_to_input": True, "normalize_activations": "none",
        "reshape_activations": "none", "k": K, "rescale_acts_by_decoder_norm": False,
    }
    assert cfg["metadata"]["hook_name"] == "blocks.3.hook_resid_post"
    assert cfg["metadata"]["corpus"] == "c"
    assert int(cfg["metadata"]["sae_lens_version"].split(".")[0]) >= 6
    with safe_open(str(out / "sae_weights.safetensors"), "pt") as f:
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    assert shapes == {"W_enc": (D_IN, D_SAE), "b_enc": (D_SAE,), "W_dec": (D_SAE, D_IN),
                      "b_dec": (D_IN,)}
    again = load_sae(out)
    x = activations()
    assert torch.equal(again.encode(x), sae.encode(x))
    assert (again.hook.name, again.hook.layer, again.hook.model_name) == (
        "blocks.3.hook_resid_post", 3, "tiny")


def test_a_sparsify_sae_saves_as_saelens(tmp_path):
    folder, _ = sparsify_folder(tmp_path)
    sae = load_sae(folder)
    save_saelens(sae, tmp_path / "as_saelens", "layers.4", 4)
    x = activations()
    assert torch.equal(load_sae(tmp_path / "as_saelens").encode(x), sae.encode(x))
    folder, _ = sparsify_folder(tmp_path / "skip", skip=True)
    with pytest.raises(ValueError, match="SAELens has no skip connection"):
        save_saelens(load_sae(folder), tmp_path / "no", "layers.4", 4)


def test_save_saelens_replaces_atomically(tmp_path):
    out = tmp_path / "sae"
    for arch in ("standard", "gated", "jumprelu"):
        sae = load_sae(write_folder(tmp_path / arch, v6_cfg(arch), random_weights(arch),
                                    "sae_weights.safetensors"))
        save_saelens(sae, out, "h", None)
        assert load_sae(out).architecture == arch
    assert sorted(os.listdir(tmp_path)) == ["gated", "jumprelu", "sae", "standard"]
    assert sorted(os.listdir(out)) == ["cfg.json", "sae_weights.safetensors"]


# ----------------------------------------------------------------------------- errors


def error_of(path: Path) -> str:
    with pytest.raises(InputError) as err:
        load_sae(path)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_missing_folder_file_and_unknown_format(tmp_path):
    assert error_of(tmp_path / "nope") == f"{tmp_path / 'nope'}: SAE folder not found"
    (tmp_path / "file").write_text("x")
    assert error_of(tmp_path / "file") == (
        f"{tmp_path / 'file'}: expected an SAE folder, found a file")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "sae_weights.safetensors").write_bytes(b"")
    assert error_of(tmp_path / "empty") == (
        f"{tmp_path / 'empty'}: unknown SAE format: expected cfg.json with "
        "sae_weights.safetensors (SAELens) or sae.safetensors (EleutherAI sparsify)"
    )


def test_missing_tensor_and_wrong_shape(tmp_path):
    w = random_weights("jumprelu")
    del w["threshold"]
    folder = write_folder(tmp_path / "a", v6_cfg("jumprelu"), w, "sae_weights.safetensors")
    assert error_of(folder) == (
        f"{folder / 'sae_weights.safetensors'}: missing tensor 'threshold' "
        "(jumprelu SAEs need W_enc, b_enc, W_dec, b_dec, threshold)"
    )
    folder = write_folder(tmp_path / "b", v6_cfg("standard", d_sae=50), random_weights("standard"),
                          "sae_weights.safetensors")
    assert error_of(folder) == (
        f"{folder / 'sae_weights.safetensors'}: tensor 'W_enc' has shape (12, 40) "
        "but cfg.json (d_in 12, d_sae 50) implies (12, 50)"
    )
    folder, w = sparsify_folder(tmp_path, skip=False, skip_connection=True)
    assert error_of(folder) == (
        f"{folder / 'sae.safetensors'}: missing tensor 'W_skip' "
        "(sparsify SAEs need encoder.weight, encoder.bias, W_dec, b_dec)"
    )


def test_config_errors(tmp_path):
    def cfg_error(name: str, cfg: dict, weights: str = "sae_weights.safetensors") -> str:
        folder = write_folder(tmp_path / name, cfg, random_weights("standard"), weights)
        return error_of(folder).removeprefix(f"{folder / 'cfg.json'}: ")

    assert cfg_error("arch", v6_cfg("matryoshka_batchtopk")) == (
        "unknown SAE architecture 'matryoshka_batchtopk': known architectures are "
        "standard, topk, jumprelu, gated"
    )
    assert cfg_error("norm", v6_cfg("standard", normalize_activations="batch_norm")) == (
        "unknown normalize_activations 'batch_norm': known modes are none, "
        "expected_average_only_in, constant_norm_rescale, layer_norm, covariance_whitening"
    )
    no_k = v6_cfg("topk")
    del no_k["k"]
    assert cfg_error("nok", no_k) == "architecture 'topk' needs 'k'"
    assert cfg_error("bigk", v6_cfg("topk", k=41)) == "k 41 is larger than d_sae 40"
    no_d = v6_cfg("standard")
    del no_d["d_in"]
    assert cfg_error("nod", no_d) == "missing 'd_in'"
    assert cfg_error("strd", v6_cfg("standard", d_sae="40")) == (
        "'d_sae' must be a positive integer, got '40'")
    flat = flat_topk_cfg() | {"activation_fn_kwargs": {}}
    assert cfg_error("flatk", flat) == "activation_fn 'topk' needs activation_fn_kwargs.k"
    assert cfg_error("gelu", flat_topk_cfg() | {"activation_fn_str": "gelu"}) == (
        "unknown activation_fn 'gelu': known are relu, tanh-relu, topk")
    assert cfg_error("list", [1, 2]) == "expected a JSON object"
    assert cfg_error("group", {"activation": "groupmax", "d_in": D_IN}, "sae.safetensors") == (
        "sparsify activation 'groupmax' is not supported: expected 'topk'")
    assert cfg_error("trans", {"transcode": True, "d_in": D_IN}, "sae.safetensors") == (
        "sparsify transcoders (transcode: true) are not supported: expected a sparse autoencoder")
    assert cfg_error("signed", {"signed": True, "d_in": D_IN}, "sae.safetensors") == (
        "sparsify signed SAEs (signed: true) are not supported")


def test_unreadable_files(tmp_path):
    folder = write_folder(tmp_path / "j", v6_cfg("standard"), random_weights("standard"),
                          "sae_weights.safetensors")
    (folder / "cfg.json").write_text("{not json")
    try:
        json.loads("{not json")
    except json.JSONDecodeError as err:
        expected = f"{folder / 'cfg.json'}: invalid JSON: {err}"
    assert error_of(folder) == expected
    folder = write_folder(tmp_path / "w", v6_cfg("standard"), random_weights("standard"),
                          "sae_weights.safetensors")
    (folder / "sae_weights.safetensors").write_bytes(b"\x01\x02garbage")
    try:
        safe_open(str(folder / "sae_weights.safetensors"), "pt")
    except Exception as err:  # whatever safetensors says, reported on one line
        first = str(err).splitlines()[0]
        expected = f"{folder / 'sae_weights.safetensors'}: cannot read safetensors: {first}"
    assert error_of(folder) == expected


def test_check_width_messages(tmp_path):
    sae = load_sae(write_folder(tmp_path / "s", v6_cfg("standard"), random_weights("standard"),
                                "sae_weights.safetensors"))
    check_width(sae, D_IN, "spec.yaml: analysis.sae[0]")
    with pytest.raises(InputError) as err:
        check_width(sae, 8, "spec.yaml: analysis.sae[0]", layer=3)
    assert str(err.value) == (
        "spec.yaml: analysis.sae[0]: SAE has d_in 12 but layer 3 of the model has width 8")
    with pytest.raises(InputError) as err:
        check_width(sae, 8, "saes/x")
    assert str(err.value) == "saes/x: SAE has d_in 12 but the model has width 8"


# ----------------------------------------------------------------------------- metrics


def test_fvu_and_l0_against_direct_formulas():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 6)) + 3
    x_hat = x + rng.normal(scale=0.1, size=x.shape)
    want = sum(np.sum((a - b) ** 2) for a, b in zip(x, x_hat, strict=True)) / sum(
        np.sum((a - x.mean(axis=0)) ** 2) for a in x)
    assert fvu(x, x_hat) == pytest.approx(want, rel=1e-12)
    assert fvu(torch.from_numpy(x).float(), torch.from_numpy(x_hat).float()) == pytest.approx(
        want, rel=1e-5)
    assert fvu(x, np.repeat(x.mean(axis=0, keepdims=True), 50, axis=0)) == pytest.approx(1.0)
    f = np.array([[0, 1.0, 0, 2], [0, 0, 0, 0], [3, 0, 0, 0]])
    assert l0(f) == pytest.approx(1.0) and l0(torch.from_numpy(f)) == pytest.approx(1.0)


def test_sae_object_is_the_public_type(tmp_path):
    sae = load_sae(write_folder(tmp_path / "s", v6_cfg("gated"), random_weights("gated"),
                                "sae_weights.safetensors"))
    assert isinstance(sae, SAE) and sae.b_enc is None and sae.needs_input_to_decode is False
