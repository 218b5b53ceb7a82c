"""The SAE object: one set of float32 weights and the encoding math of the library that made it.

SAELens (standard, topk, jumprelu, gated; ``apply_b_dec_to_input``; ``normalize_activations``)
and EleutherAI sparsify (TopK on ``x - b_dec``, optional ``W_skip``) are both expressed here,
so every later metric sees one interface whatever folder the dictionary came from.
Weights are kept and applied in float32 whatever dtype the folder stored, so two models'
activations are encoded with exactly the same arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from reportgen.core.errors import InputError

ARCHITECTURES = ("standard", "topk", "jumprelu", "gated")
NORMALIZATIONS = (
    "none",
    "expected_average_only_in",
    "constant_norm_rescale",
    "layer_norm",
    "covariance_whitening",
)
# Training-time modes: SAELens folds them into the weights when training ends and applies
# nothing at inference, so a folder that still names one is encoded without a run-time step.
FOLDED_NORMALIZATIONS = ("expected_average_only_in", "covariance_whitening")
ACTIVATIONS = ("relu", "tanh-relu")

# SAELens' layer_norm mode divides by (std + eps) with this eps (sae_lens/saes/sae.py).
LAYER_NORM_EPS = 1e-5

ArrayLike = Tensor | np.ndarray


@dataclass(frozen=True)
class HookInfo:
    """Where in the model the dictionary reads its activations, as its folder records it."""

    name: str | None = None
    layer: int | None = None
    model_name: str | None = None


@dataclass(eq=False, repr=False)
class SAE:
    """A sparse autoencoder: ``encode`` maps ``(n, d_in)`` activations to ``(n, d_sae)`` features.

    Tensor layout follows SAELens: ``W_enc (d_in, d_sae)``, ``W_dec (d_sae, d_in)``.
    Fields that an architecture does not use stay None.
    """

    architecture: str
    W_enc: Tensor
    W_dec: Tensor
    b_dec: Tensor
    b_enc: Tensor | None = None
    k: int | None = None
    threshold: Tensor | None = None
    b_gate: Tensor | None = None
    r_mag: Tensor | None = None
    b_mag: Tensor | None = None
    apply_b_dec_to_input: bool = True
    normalize_activations: str = "none"
    activation_fn: str = "relu"
    rescale_acts_by_decoder_norm: bool = False
    finetuning_scaling_factor: Tensor | None = None
    W_skip: Tensor | None = None
    hook: HookInfo = field(default_factory=HookInfo)
    source: str = "reportgen"
    notes: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        k = f", k={self.k}" if self.k is not None else ""
        return (
            f"SAE({self.architecture}, d_in={self.d_in}, d_sae={self.d_sae}{k}, "
            f"source={self.source!r}, hook={self.hook.name!r})"
        )

    @property
    def d_in(self) -> int:
        return int(self.W_enc.shape[0])

    @property
    def d_sae(self) -> int:
        return int(self.W_enc.shape[1])

    @property
    def device(self) -> torch.device:
        return self.W_enc.device

    def to(self, device: str | torch.device) -> SAE:
        """The same dictionary with its tensors on ``device`` (``self`` when already there):
        encoding then runs there, its inputs moved to it, its outputs left on it."""
        if torch.device(device) == self.device:
            return self
        moved = {f.name: getattr(self, f.name).to(device) for f in fields(self)
                 if isinstance(getattr(self, f.name), Tensor)}
        return replace(self, **moved)

    @property
    def needs_input_to_decode(self) -> bool:
        """Per-row normalisation and skip connections are undone from the input itself."""
        per_row = self.normalize_activations in ("constant_norm_rescale", "layer_norm")
        return per_row or self.W_skip is not None

    @torch.no_grad()
    def encode(self, x: ArrayLike) -> Tensor:
        """Feature activations ``(n, d_sae)``, float32, exactly as the source library computes,
        on the dictionary's device (see :meth:`to`)."""
        x = self._as_input(x)
        sae_in = self._normalise_in(x)[0] - self.b_dec * float(self.apply_b_dec_to_input)
        if self.architecture == "gated":
            return self._encode_gated(sae_in)
        hidden_pre = sae_in @ self.W_enc + self.b_enc
        if self.architecture == "topk":
            return self._topk(hidden_pre)
        acts = _activation(hidden_pre, self.activation_fn)
        if self.architecture == "jumprelu":
            acts = acts * (hidden_pre > self.threshold).to(acts.dtype)
        return acts

    @torch.no_grad()
    def decode(self, f: ArrayLike, x: ArrayLike | None = None) -> Tensor:
        """Reconstruction ``(n, d_in)`` from features.

        ``x`` (the activations that were encoded) is needed only when the SAE normalises each
        row (``constant_norm_rescale``, ``layer_norm``) or has a skip connection: SAELens and
        sparsify undo those from the input, so without it the result would be silently wrong.
        """
        f = _as_float32(f, self.device)
        if self.needs_input_to_decode and x is None:
            raise ValueError(f"decode needs the encoded activations x for this SAE "
                             f"({self._input_needs()}); use reconstruct(x)")
        if self.finetuning_scaling_factor is not None:
            f = f * self.finetuning_scaling_factor
        if self.rescale_acts_by_decoder_norm:
            f = f / self.W_dec.norm(dim=-1)
        out = f @ self.W_dec + self.b_dec
        if x is None:
            return out
        x = self._as_input(x)
        out = self._normalise_out(out, self._normalise_in(x)[1])
        if self.W_skip is not None:
            out = out + x @ self.W_skip.T
        return out

    def reconstruct(self, x: ArrayLike) -> Tensor:
        """``decode(encode(x), x)``: the SAE's full forward pass, in the input's own units."""
        return self.decode(self.encode(x), x)

    def _input_needs(self) -> str:
        needs = []
        if self.normalize_activations in ("constant_norm_rescale", "layer_norm"):
            needs.append(f"normalize_activations {self.normalize_activations!r}")
        if self.W_skip is not None:
            needs.append("a skip connection")
        return " and ".join(needs)

    def _as_input(self, x: ArrayLike) -> Tensor:
        x = _as_float32(x, self.device)
        if x.ndim != 2 or x.shape[1] != self.d_in:
            shape = tuple(x.shape)
            raise ValueError(f"expected activations of shape (n, {self.d_in}), got {shape}")
        return x

    def _normalise_in(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor] | None]:
        """SAELens' run-time normalisation: the scaled input and what undoes it."""
        if self.normalize_activations == "constant_norm_rescale":
            coeff = (self.d_in**0.5) / x.norm(dim=-1, keepdim=True)
            return x * coeff, (coeff, coeff)
        if self.normalize_activations == "layer_norm":
            mu = x.mean(dim=-1, keepdim=True)
            centred = x - mu
            std = centred.std(dim=-1, keepdim=True)
            return centred / (std + LAYER_NORM_EPS), (mu, std)
        return x, None  # none, or a FOLDED_NORMALIZATIONS mode

    def _normalise_out(self, out: Tensor, stats: tuple[Tensor, Tensor] | None) -> Tensor:
        if stats is None:
            return out
        if self.normalize_activations == "constant_norm_rescale":
            return out / stats[0]
        mu, std = stats
        return out * std + mu

    def _topk(self, hidden_pre: Tensor) -> Tensor:
        if self.rescale_acts_by_decoder_norm:
            hidden_pre = hidden_pre * self.W_dec.norm(dim=-1)
        values, indices = hidden_pre.topk(self.k, dim=-1, sorted=False)
        return torch.zeros_like(hidden_pre).scatter_(-1, indices, values.relu())

    def _encode_gated(self, sae_in: Tensor) -> Tensor:
        active = (sae_in @ self.W_enc + self.b_gate > 0).to(sae_in.dtype)
        magnitude = sae_in @ (self.W_enc * self.r_mag.exp()) + self.b_mag
        return active * _activation(magnitude, self.activation_fn)


def _activation(x: Tensor, name: str) -> Tensor:
    """SAELens' activation functions; ``tanh-relu`` only exists in configs before 6.0."""
    return x.relu().tanh() if name == "tanh-relu" else x.relu()


def _as_float32(x: ArrayLike, device: torch.device | str = "cpu") -> Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, Tensor):
        raise TypeError(f"expected a torch tensor or numpy array, got {type(x).__name__}")
    return x.detach().to(device=device, dtype=torch.float32)


def check_width(sae: SAE, d_in_expected: int, where: str, layer: int | None = None) -> None:
    """Refuse an SAE whose input width does not match the hidden states it will encode."""
    if sae.d_in == d_in_expected:
        return
    target = f"layer {layer} of the model" if layer is not None else "the model"
    raise InputError(f"{where}: SAE has d_in {sae.d_in} but {target} has width {d_in_expected}")
