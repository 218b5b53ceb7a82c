"""Train a TopK sparse autoencoder on activations (Gao et al. 2024, as EleutherAI sparsify does).

The recipe: inputs scaled to a mean norm of sqrt(d_in) (folded back out at the end, so the
SAE reads raw activations), b_dec initialised to the geometric median, encoder initialised to
the transposed decoder, unit-norm decoder rows kept unit-norm, Adam on the fraction of
variance unexplained plus AuxK on dead latents. Only the k selected latents per row get
gradients, so the backward pass is sparse and CPU training stays fast.

Training is a pure function of (activations, settings, seed): the batch order of step t
depends only on (seed, t), so a run resumed from a checkpoint ends with exactly the weights
an uninterrupted run has.

With ``device`` (``"cuda"``) the parameters, optimiser state and each batch live there, the
activations stay in host memory and the batch order and initialisation are drawn on the CPU
as before, so only rounding differs between devices; products in float32 with float32
accumulation. On a GPU the sparse backward adds with atomics, so two runs may differ in the
last bits (their FVU agrees to the tolerance the tests state), and a checkpoint resumes on
either device.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from reportgen.sae.model import SAE

CHECKPOINT_FILE = "sae_train_state.safetensors"
DEFAULT_LR = 6e-3


@dataclass(frozen=True)
class TrainStatus:
    """What a progress callback is told every ``log_every`` steps and at the end."""

    step: int
    total_steps: int
    tokens: int
    fvu: float
    dead_fraction: float
    elapsed_s: float
    resumed_from_step: int


@dataclass(frozen=True)
class _Settings:
    d_sae: int
    k: int
    seed: int
    steps: int
    batch_size: int
    lr: float
    auxk_alpha: float
    dead_after_tokens: int
    warmup_steps: int


def planned_steps(n: int, batch_size: int, steps: int | None = None,
                  epochs: float | None = None) -> int:
    """The training length :func:`train_topk_sae` runs for ``n`` activations: ``steps``, or
    ``epochs`` passes of ``n // batch_size`` batches, by default one pass and at least 500."""
    if steps is not None:
        return steps
    per_epoch = max(n // min(batch_size, n), 1)
    return max(round((epochs or 1.0) * per_epoch), 1 if epochs else 500)


def train_topk_sae(
    acts: np.ndarray | Tensor,
    d_sae: int,
    k: int,
    *,
    seed: int,
    steps: int | None = None,
    epochs: float | None = None,
    batch_size: int = 4096,
    lr: float | None = None,
    auxk_alpha: float = 1 / 32,
    dead_after_tokens: int | None = None,
    progress: Callable[[TrainStatus], None] | None = None,
    log_every: int = 50,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 100,
    device: str | None = None,
) -> SAE:
    """A TopK SAE fitted to ``acts (n, d_in)``; deterministic for a given ``seed``.

    Length: ``steps`` batches or ``epochs`` passes over the data (not both); by default one
    pass and at least 500 steps, so that small activation sets still train. The default
    ``lr`` (6e-3, decayed to 0 over the last fifth) suits the normalised inputs: on planted
    dictionaries at d_in 32 and 384 it beat 1e-3 and 3e-3 and matched 1e-2 with fewer dead
    latents. A latent is dead (and trained by AuxK) when it has not fired for
    ``dead_after_tokens`` rows (default: min(n, 1M)). With ``checkpoint_dir``, state is
    saved every ``checkpoint_every`` steps and at the end, and a checkpoint of the same run
    (same data, settings and seed) found there is resumed. ``device``: where training runs
    (None: the CPU); the SAE returned is on the CPU.
    """
    if steps is not None and epochs is not None:
        raise ValueError("give steps or epochs, not both")
    data = _as_matrix(acts)
    n = data.shape[0]
    if not 0 < k <= d_sae:
        raise ValueError(f"need 0 < k <= d_sae, got k={k}, d_sae={d_sae}")
    bs = min(batch_size, n)
    steps = planned_steps(n, batch_size, steps, epochs)
    if steps < 1:
        raise ValueError(f"need at least one step, got {steps}")
    settings = _Settings(
        d_sae=d_sae, k=k, seed=seed, steps=steps, batch_size=bs,
        lr=lr if lr is not None else DEFAULT_LR,
        auxk_alpha=auxk_alpha,
        dead_after_tokens=dead_after_tokens or min(n, 1_000_000),
        warmup_steps=min(100, steps // 10),
    )
    scale = _input_scale(data)
    from reportgen.core.accel import exact_float32

    with exact_float32():
        trainer = _Trainer(data, scale, settings, torch.device(device or "cpu"))
        return trainer.run(progress, log_every, checkpoint_dir, checkpoint_every)

def _as_matrix(acts: np.ndarray | Tensor) -> Tensor:
    data = torch.from_numpy(np.ascontiguousarray(acts)) if isinstance(acts, np.ndarray) else acts
    if not isinstance(data, Tensor) or data.ndim != 2 or data.shape[0] == 0:
        raise ValueError("expected activations of shape (n, d_in) with n > 0")
    finite = data.is_floating_point() and all(
        bool(torch.isfinite(chunk).all()) for chunk in data.split(65536)
    )
    if not finite:
        raise ValueError("activations must be finite floating-point numbers")
    if not any(bool((chunk != data[0]).any()) for chunk in data.split(65536)):
        raise ValueError("activations are all the same row: there is nothing to learn")
    return data.detach().cpu()

def _input_scale(data: Tensor) -> float:
    """sqrt(d_in) / mean row norm, so training sees inputs of a fixed size whatever the model."""
    norms = torch.cat([c.double().norm(dim=1) for c in data.split(65536)])
    mean = float(norms.mean())
    return math.sqrt(data.shape[1]) / mean if mean > 0 else 1.0

def geometric_median(points: Tensor, iters: int = 100, tol: float = 1e-6) -> Tensor:
    """Weiszfeld's algorithm: the point minimising the summed distance to ``points``."""
    median = points.mean(0)
    for _ in range(iters):
        dist = (points - median).norm(dim=1).clamp_min(1e-8)
        weights = 1.0 / dist
        new = (weights[:, None] * points).sum(0) / weights.sum()
        if (new - median).norm() <= tol * max(float(median.norm()), 1.0):
            return new
        median = new
    return median

class _SelectedPreacts(torch.autograd.Function):
    """ReLU pre-activations at chosen latents, with a backward that touches only those."""

    @staticmethod
    def forward(ctx, sae_in, W_e, b_e, indices, values):
        ctx.save_for_backward(sae_in, W_e, indices, values)
        return values.clone()

    @staticmethod
    def backward(ctx, grad):
        sae_in, W_e, indices, values = ctx.saved_tensors
        grad = grad * (values > 0)
        n, k = indices.shape
        flat = indices.reshape(-1)
        rows = torch.arange(n, device=indices.device).repeat_interleave(k)
        sparse = torch.sparse_coo_tensor(
            torch.stack([flat, rows]), grad.reshape(-1), (W_e.shape[0], n), check_invariants=False
        )
        grad_W = torch.sparse.mm(sparse, sae_in)
        grad_b = torch.zeros(W_e.shape[0], device=W_e.device).index_add_(0, flat,
                                                                          grad.reshape(-1))
        grad_in = F.embedding_bag(indices, W_e, per_sample_weights=grad, mode="sum")
        return grad_in, grad_W, grad_b, None, None

class _Trainer:
    def __init__(self, data: Tensor, scale: float, s: _Settings,
                 device: torch.device | None = None):
        self.data, self.scale, self.s = data, scale, s
        self.device = device or torch.device("cpu")
        gen = torch.Generator().manual_seed(s.seed)
        d_in = data.shape[1]
        W_dec = torch.randn(s.d_sae, d_in, generator=gen)
        W_dec /= W_dec.norm(dim=1, keepdim=True)
        sample = torch.randperm(len(data), generator=gen)[:8192].sort().values
        self.params = {
            "W_e": W_dec.clone(),  # encoder weight (d_sae, d_in), as nn.Linear stores it
            "b_e": torch.zeros(s.d_sae),
            "W_dec": W_dec,
            "b_dec": geometric_median(data[sample].float() * scale),
        }
        self.params = {n: p.to(self.device) for n, p in self.params.items()}
        for p in self.params.values():
            p.requires_grad_(True)
        self.opt = torch.optim.Adam(self.params.values(), lr=s.lr)
        self.since_fired = torch.zeros(s.d_sae, dtype=torch.int64, device=self.device)
        self.step = 0
        self.resumed_from = 0
        self.fvus: list[float] = []
        self._perm: tuple[int, Tensor] = (-1, torch.empty(0, dtype=torch.int64))
        self.identity = {**s.__dict__, "data": _fingerprint(data)}

    def run(
        self,
        progress: Callable[[TrainStatus], None] | None,
        log_every: int,
        checkpoint_dir: str | Path | None,
        checkpoint_every: int,
    ) -> SAE:
        ckpt_path = Path(checkpoint_dir) / CHECKPOINT_FILE if checkpoint_dir else None
        if ckpt_path is not None:
            self._resume(ckpt_path)
        t0 = time.perf_counter()
        if self.step >= self.s.steps and progress is not None:  # finished earlier: say so
            progress(self._status(time.perf_counter() - t0))
        while self.step < self.s.steps:
            fvu = self._train_step(self._batch(self.step))
            self.step += 1
            self.fvus = (self.fvus + [fvu])[-20:]
            if ckpt_path is not None and (
                self.step % checkpoint_every == 0 or self.step == self.s.steps
            ):
                _save_checkpoint(ckpt_path, self._checkpoint())
            if progress is not None and (self.step % log_every == 0 or self.step == self.s.steps):
                progress(self._status(time.perf_counter() - t0))
        return self._export()

    def _batch(self, step: int) -> Tensor:
        """Rows for ``step``: a fresh permutation per epoch, seeded by (seed, epoch)."""
        per_epoch = max(len(self.data) // self.s.batch_size, 1)
        epoch, pos = divmod(step, per_epoch)
        if self._perm[0] != epoch:
            gen = torch.Generator().manual_seed(self.s.seed * 1_000_003 + epoch)
            self._perm = (epoch, torch.randperm(len(self.data), generator=gen))
        idx = self._perm[1][pos * self.s.batch_size : (pos + 1) * self.s.batch_size]
        return (self.data[idx].float() * self.scale).to(self.device)

    def _train_step(self, x: Tensor) -> float:
        p = self.params
        sae_in = x - p["b_dec"]
        with torch.no_grad():
            pre = torch.addmm(p["b_e"], sae_in, p["W_e"].T).relu_()
            top_vals, top_idx = pre.topk(self.s.k, dim=-1, sorted=False)
        vals = _SelectedPreacts.apply(sae_in, p["W_e"], p["b_e"], top_idx, top_vals)
        x_hat = F.embedding_bag(top_idx, p["W_dec"], per_sample_weights=vals, mode="sum")
        e = x - (x_hat + p["b_dec"])
        total_var = (x - x.mean(0)).pow(2).sum()
        fvu = e.pow(2).sum() / total_var
        loss = fvu + self.s.auxk_alpha * self._auxk(pre, sae_in, e, total_var)
        loss.backward()
        self._update(top_idx[top_vals > 0], len(x))
        return float(fvu.detach())

    def _auxk(self, pre: Tensor, sae_in: Tensor, e: Tensor, total_var: Tensor) -> Tensor:
        """Dead latents predict the residual of the live ones (Gao et al., appendix B.1)."""
        dead = self.since_fired >= self.s.dead_after_tokens
        num_dead = int(dead.sum())
        if num_dead == 0:
            return e.new_zeros(())
        k_aux = max(sae_in.shape[1] // 2, 1)
        scale = min(num_dead / k_aux, 1.0)
        k_aux = min(k_aux, num_dead)
        with torch.no_grad():
            aux_vals, aux_idx = torch.where(dead[None], pre, -torch.inf).topk(k_aux, sorted=False)
        p = self.params
        vals = _SelectedPreacts.apply(sae_in, p["W_e"], p["b_e"], aux_idx, aux_vals)
        e_hat = F.embedding_bag(aux_idx, p["W_dec"], per_sample_weights=vals, mode="sum")
        return scale * (e_hat - e.detach()).pow(2).sum() / total_var

    def _update(self, fired: Tensor, n_rows: int) -> None:
        W_dec = self.params["W_dec"]
        with torch.no_grad():
            # Unit-norm decoder rows: drop the gradient along each row, renormalise after.
            W_dec.grad -= (W_dec.grad * W_dec).sum(1, keepdim=True) * W_dec
            for group in self.opt.param_groups:
                group["lr"] = self.s.lr * _lr_factor(self.step, self.s)
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)
            W_dec /= W_dec.norm(dim=1, keepdim=True)
            self.since_fired += n_rows
            self.since_fired[fired.unique()] = 0

    def _status(self, elapsed: float) -> TrainStatus:
        dead = float((self.since_fired >= self.s.dead_after_tokens).float().mean())
        tokens = self.step * self.s.batch_size
        fvu = self.fvus[-1] if self.fvus else float("nan")
        return TrainStatus(self.step, self.s.steps, tokens, fvu, dead, elapsed, self.resumed_from)

    def _checkpoint(self) -> _Checkpoint:
        tensors = {n: p.detach().cpu() for n, p in self.params.items()}
        tensors["since_fired"] = self.since_fired.cpu()
        for i, state in self.opt.state_dict()["state"].items():
            for key, value in state.items():
                tensors[f"adam.{i}.{key}"] = torch.as_tensor(value).cpu()
        return _Checkpoint(self.step, self.identity, tensors, self.fvus)

    def _resume(self, path: Path) -> None:
        ckpt = _load_checkpoint(path, self.identity)
        if ckpt is None:
            return
        with torch.no_grad():
            for name, p in self.params.items():
                p.copy_(ckpt.tensors[name])
        self.since_fired = ckpt.tensors["since_fired"].to(self.device, copy=True)
        state = self.opt.state_dict()
        for i, _ in enumerate(self.params):
            prefix = f"adam.{i}."
            entries = {k[len(prefix):]: v for k, v in ckpt.tensors.items() if k.startswith(prefix)}
            if entries:
                state["state"][i] = entries
        self.opt.load_state_dict(state)
        self.step = self.resumed_from = ckpt.step
        self.fvus = list(ckpt.fvus)

    def _export(self) -> SAE:
        """Fold the input scale back out: features and reconstructions in raw units."""
        p = {n: t.detach().cpu().clone() for n, t in self.params.items()}
        dead = int((self.since_fired >= self.s.dead_after_tokens).sum())
        meta = {
            "trained_by": "reportgen.sae.train_topk_sae", "seed": self.s.seed,
            "steps": self.s.steps, "batch_size": self.s.batch_size, "lr": self.s.lr,
            "auxk_alpha": self.s.auxk_alpha, "n_activations": len(self.data),
            "tokens_seen": self.s.steps * self.s.batch_size, "input_scale": self.scale,
            "final_batch_fvu": float(np.mean(self.fvus)) if self.fvus else None,
            "dead_latents": dead,
        }
        return SAE(
            architecture="topk", W_enc=p["W_e"].T.contiguous(), b_enc=p["b_e"] / self.scale,
            W_dec=p["W_dec"], b_dec=p["b_dec"] / self.scale, k=self.s.k, meta=meta,
        )


def _lr_factor(step: int, s: _Settings) -> float:
    """Linear warm-up, constant, then linear decay to zero over the last fifth."""
    if s.warmup_steps and step < s.warmup_steps:
        return (step + 1) / s.warmup_steps
    decay_start = int(s.steps * 0.8)
    if step >= decay_start:
        return max(s.steps - step, 1) / max(s.steps - decay_start, 1)
    return 1.0


# ----------------------------------------------------------------------------- checkpoints


@dataclass
class _Checkpoint:
    step: int
    identity: dict[str, Any]
    tensors: dict[str, Tensor]
    fvus: list[float]


def _fingerprint(data: Tensor) -> str:
    """SHA-256 of the activations (a few seconds for 1M x 384), so a checkpoint made on
    other data is never resumed."""
    digest = hashlib.sha256(f"{tuple(data.shape)}|{data.dtype}".encode())
    for chunk in data.split(65536):
        digest.update(chunk.float().contiguous().numpy())
    return digest.hexdigest()


def _save_checkpoint(path: Path, ckpt: _Checkpoint) -> None:
    """One safetensors file (no pickle), written aside and renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"step": ckpt.step, "identity": ckpt.identity, "fvus": ckpt.fvus}
    tmp = path.with_name(f".{path.name}.tmp")
    tensors = {k: v.contiguous() for k, v in ckpt.tensors.items()}
    save_file(tensors, str(tmp), metadata={"reportgen": json.dumps(header, sort_keys=True)})
    os.replace(tmp, path)


def _load_checkpoint(path: Path, identity: dict[str, Any]) -> _Checkpoint | None:
    """The checkpoint at ``path`` if it belongs to this very run; otherwise start afresh."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = json.loads((f.metadata() or {})["reportgen"])
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    except Exception:  # unreadable or foreign: it is only a cache of progress
        return None
    same = json.dumps(header["identity"], sort_keys=True) == json.dumps(identity, sort_keys=True)
    return _Checkpoint(header["step"], identity, tensors, header["fvus"]) if same else None
