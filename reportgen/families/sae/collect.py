"""The ``sae`` capture collector: per-token activations at each SAE layer, the dictionary.

During the capture pass it keeps, per SAE layer, the residual stream of every non-padding
token of every probe text (with token ids, text rows and positions). Activations are stored
as float16 when they fit (|x| < 60000): the rounding (relative 5e-4) moves FVU and the
feature-overlap means by far less than their reported precision (tests/sae/test_pipeline_sae
checks it). After the pass, still with the model loaded, ``finish``:

- on the base with ``train``: reads the optional corpus (extra forward passes, base only),
  trains a TopK SAE on the activations (seeded, with progress, resumable from a checkpoint in
  the cache folder) and stores it in SAELens format with the capture, so every candidate
  encodes with the very same dictionary;
- for causal LMs: the cross-entropy loss recovered pass (see :mod:`.splice`) on a capped
  sample of the domain texts.

Extra forward calls are declared in ``meta["extra_forward_calls"]``. Training, encoding and
the spliced reconstructions run on the audit's analysis device (``ctx.device``, see
:mod:`reportgen.core.accel`), the same for every model of the audit.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reportgen.capture.forward import Batch, Extra, backbone
from reportgen.core.progress import Progress
from reportgen.core.tokentext import running_pieces
from reportgen.families.sae.sources import (
    HOOK_POINT,
    LayerSource,
    model_shape,
    plan_sources,
    stored_names,
)
from reportgen.sae.splice import ce_layer_ok, ce_recovered_pass

#: Texts read by the cross-entropy-recovered pass: a sample spread over the domain texts.
CE_MAX_TEXTS = 64
TRAIN_BATCH = 1024
#: A trained dictionary never sees every HOLD_OUT-th probe text; FVU is measured on those (in
#: both models), so the base's fit is not flattered by the training data.
HOLD_OUT = 5
FVU_ALL = "all probe tokens"
FVU_HELD_OUT = (f"held-out probe texts (every {HOLD_OUT}th text, not used to train the "
                "dictionary)")
FLOAT16_MAX = 6.0e4


class SAECollector:
    name = "sae"

    def __init__(self, sources: list[LayerSource], ctx: Any):
        self.sources = sources
        a = ctx.loaded.spec.analysis
        self.max_length, self.batch_size, self.seed = a.max_length, a.batch_size, a.seed
        self.causal = ctx.model.kind == "causal-lm"
        self.identity = ctx.model.capture_identity
        self.device: str | None = ctx.device
        self.n_layers = model_shape(ctx.model.config)[1]
        slices = ctx.probe.slices()
        dom = [i for k, s in slices.items() if k.startswith("domains.")
               for i in range(s.start, s.stop)]
        self.ce_rows = dom or list(range(sum(s.stop - s.start for s in slices.values())))
        if len(self.ce_rows) > CE_MAX_TEXTS:
            pick = np.linspace(0, len(self.ce_rows) - 1, CE_MAX_TEXTS).round().astype(int)
            self.ce_rows = [self.ce_rows[i] for i in pick]
        self.ce_from = "domain texts" if dom else "probe texts (no domain probes)"

    def settings(self) -> str:
        on = {"device": self.device} if self.device is not None else {}
        return json.dumps({
            "v": 3, "layers": [[s.layer, s.digest, s.train] for s in self.sources],
            "ce": self.causal and [self.ce_rows, CE_MAX_TEXTS], "train_batch": TRAIN_BATCH,
            "hold_out": HOLD_OUT,
            "labels": [sorted(s.labels.items()) for s in self.sources], **on}, sort_keys=True)

    def start(self, model: Any, tokenizer: Any, texts: list[str], workdir: Path) -> None:
        self.model, self.tok, self.texts, self.work = model, tokenizer, texts, workdir
        self.acts: dict[int, list[np.ndarray]] = {s.layer: [] for s in self.sources}
        self.ids: list[np.ndarray] = []
        self.rows: list[np.ndarray] = []
        self.pos: list[np.ndarray] = []
        self.calls = 0

    def batch(self, b: Batch) -> None:
        mask = b.attention_mask.bool().cpu()
        T = mask.shape[1]
        self.ids.append(b.input_ids.cpu()[mask].numpy())
        self.rows.append(torch.tensor(b.rows)[:, None].expand(-1, T)[mask].numpy())
        self.pos.append(torch.arange(T)[None, :].expand(mask.shape[0], -1)[mask].numpy())
        for layer in self.acts:
            h = b.output.hidden_states[layer].float().cpu()
            self.acts[layer].append(h[mask].numpy())

    def finish(self, progress: Progress) -> Extra:
        rows, pos = np.concatenate(self.rows), np.concatenate(self.pos)
        order = np.lexsort((pos, rows))
        arrays = {"token_ids": np.concatenate(self.ids)[order].astype(np.int64),
                  "text_rows": rows[order].astype(np.int64), "positions": pos[order]}
        extra = Extra(arrays=arrays)
        layers: dict[str, Any] = {}
        for s in self.sources:
            acts = np.concatenate(self.acts[s.layer])[order]
            held = held_out(arrays["text_rows"]) if s.origin == "trained" else None
            if s.sae is None:
                self._train(s, acts[~held], progress, extra)
            fit: dict[str, Any] = {"fvu_on": FVU_ALL if held is None else FVU_HELD_OUT}
            arrays.update(_encode(s.sae, s.layer, acts, fit, held, device=self.device))
            small = np.abs(acts).max() < FLOAT16_MAX
            arrays[f"acts.{s.layer}"] = acts.astype(np.float16 if small else np.float32)
            layers[str(s.layer)] = {
                "digest": s.digest, "origin": s.origin, "d_in": s.sae.d_in,
                "d_sae": s.sae.d_sae, "architecture": s.sae.architecture, "train": s.train,
                "labels": s.labels, "stored_dtype": str(arrays[f"acts.{s.layer}"].dtype), **fit}
        self._ce(layers, progress)
        pieces = running_pieces(self.tok, sorted(set(arrays["token_ids"].tolist())))
        extra.meta = {"hook_point": HOOK_POINT, "layers": layers,
                      "token_text": {str(i): t for i, t in pieces.items()},
                      "extra_forward_calls": self.calls}
        self.acts.clear()
        return extra

    def _ce(self, layers: dict[str, Any], progress: Progress) -> None:
        saes = {s.layer: s.sae.to(self.device) if self.device else s.sae
                for s in self.sources if ce_layer_ok(s.layer, self.n_layers)}
        for s in self.sources:
            if s.layer not in saes:
                layers[str(s.layer)]["ce"] = {"error": "not available: CE recovered is "
                                              "measured for block outputs 1..n_layers-1 of "
                                              "causal LMs" if self.causal else
                                              "not available: not a causal LM"}
        if not self.causal or not saes:
            return
        progress.say(f"SAE: cross-entropy with reconstructions spliced in, "
                     f"{len(self.ce_rows)} {self.ce_from}")
        res, calls = ce_recovered_pass(self.model, self.tok, [self.texts[i] for i in self.ce_rows],
                                       saes, self.n_layers, self.max_length, self.batch_size)
        self.calls += calls
        for layer, r in res.items():
            layers[str(layer)]["ce"] = {**r, "sample": self.ce_from}

    def _train(self, s: LayerSource, acts: np.ndarray, progress: Progress, extra: Extra) -> None:
        from reportgen.families.sae.sources import stored_dictionary
        from reportgen.sae.formats import save_saelens
        from reportgen.sae.train import planned_steps, train_topk_sae

        data = np.concatenate([acts, self._corpus_acts(s)]) if s.corpus else acts
        key = hashlib.sha256(f"{self.identity}|{s.digest}|{len(data)}".encode()).hexdigest()
        from reportgen.capture.cache import cache_root

        ckpt = cache_root() / "sae-train" / key[:32]
        progress.say(f"SAE layer {s.layer}: training TopK d_sae={s.train['d_sae']} "
                     f"k={s.train['k']} on {len(data)} base activations")

        seen = [0, None]  # steps reported, last status

        with torch.inference_mode(False), torch.enable_grad(), progress.counter(
                f"SAE layer {s.layer} training steps", planned_steps(
                    len(data), TRAIN_BATCH, epochs=s.train["epochs"])) as advance:
            def report(st: Any) -> None:
                advance(st.step - seen[0])
                seen[:] = [st.step, st]

            sae = train_topk_sae(np.ascontiguousarray(data, dtype=np.float32), s.train["d_sae"],
                                 s.train["k"], seed=s.train["seed"], epochs=s.train["epochs"],
                                 batch_size=TRAIN_BATCH, progress=report, log_every=10,
                                 checkpoint_dir=ckpt, device=self.device)
        if seen[1] is not None:
            progress.say(f"SAE layer {s.layer}: fvu {seen[1].fvu:.3f} "
                         f"dead {seen[1].dead_fraction:.1%}")
        folder = save_saelens(sae, self.work / f"sae-layer{s.layer}",
                              hook_name=f"hidden_states.{s.layer}", hook_layer=s.layer,
                              extra_cfg={"trained_by": "reportgen", "hook_point": HOOK_POINT})
        shutil.rmtree(ckpt, ignore_errors=True)
        for name, stored in zip(("cfg.json", "sae_weights.safetensors"), stored_names(s.layer),
                                strict=True):
            extra.files[stored] = folder / name
        s.sae, s.digest = stored_dictionary(extra, s.layer)

    def _corpus_acts(self, s: LayerSource) -> np.ndarray:
        enc = self.tok(s.corpus, truncation=True, max_length=self.max_length)["input_ids"]
        body = backbone(self.model)
        device = self.model.get_input_embeddings().weight.device
        out = []
        for i in range(0, len(enc), self.batch_size):
            b = self.tok.pad({"input_ids": enc[i:i + self.batch_size]}, return_tensors="pt")
            mask = b["attention_mask"].bool()
            hs = body(input_ids=b["input_ids"].to(device), attention_mask=mask.to(device),
                      output_hidden_states=True).hidden_states
            self.calls += 1
            out.append(hs[s.layer].float().cpu()[mask].numpy())
        return np.concatenate(out)


def held_out(text_rows: np.ndarray) -> np.ndarray:
    """Tokens of the probe texts a trained dictionary is not trained on."""
    return text_rows % HOLD_OUT == HOLD_OUT - 1


def _encode(sae: Any, layer: int, acts: np.ndarray, fit: dict[str, Any],
            held: np.ndarray | None = None, chunk: int = 4096,
            device: str | None = None) -> dict[str, np.ndarray]:
    """The dictionary's codes of float32 activations as CSR arrays; FVU (on the ``held``
    tokens when given) and L0 into ``fit``. ``device``: where the encoding runs (None: the
    CPU), in float32 with float32 accumulation."""
    from scipy import sparse

    from reportgen.core.accel import exact_float32
    from reportgen.sae.fit import fvu

    on = sae.to(device) if device else sae
    parts, recon = [], []
    for i in range(0, len(acts), chunk):
        x = torch.from_numpy(np.ascontiguousarray(acts[i:i + chunk], dtype=np.float32))
        with exact_float32():
            f = on.encode(x)
            recon.append(on.decode(f, x).cpu().numpy())
        parts.append(sparse.csr_matrix(f.cpu().numpy()))
    codes = sparse.vstack(parts).tocsr()
    recon_all = np.concatenate(recon)
    sel = slice(None) if held is None or not held.any() else held
    fit["fvu"] = fvu(acts[sel], recon_all[sel])
    fit["l0"] = float(np.diff(codes.indptr).mean())
    return {f"codes.{layer}.indptr": codes.indptr.astype(np.int64),
            f"codes.{layer}.indices": codes.indices.astype(np.int32),
            f"codes.{layer}.values": codes.data.astype(np.float32)}


def load_codes(extra: Any, layer: int, d_sae: int) -> Any:
    """The CSR matrix (tokens x features) stored by :func:`_encode`."""
    from scipy import sparse

    a = extra.arrays
    return sparse.csr_matrix((a[f"codes.{layer}.values"], a[f"codes.{layer}.indices"],
                              a[f"codes.{layer}.indptr"]),
                             shape=(len(a[f"codes.{layer}.indptr"]) - 1, d_sae))


def factory(ctx: Any) -> SAECollector | None:
    if not ctx.loaded.spec.analysis.sae:
        return None
    base_extra = ctx.base.extras.get("sae") if ctx.base is not None else None
    return SAECollector(plan_sources(ctx.loaded, ctx.model, base_extra), ctx)
