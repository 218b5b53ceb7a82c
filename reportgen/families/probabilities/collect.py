"""The ``probabilities`` collector: next-token (or masked-token) distributions and risk margins.

Causal LMs are scored in the capture's own forward pass. The base's pass stores, per scored
position (domain and risk probe texts), only its final hidden state (d floats, streamed to a
disk store) and, once, its LM head (:mod:`reportgen.families.probabilities.head`); it
computes no vocabulary-sized output at all. A candidate's pass reads the base's hidden
states back block by block, applies the stored base head and its own head to a block of
positions at a time, and keeps only the statistics (:class:`ShiftAccumulator`): memory stays
near one model, one LM head and one block; disk grows with d, not the vocabulary. Masked LMs
run a separate pass over masked copies in ``finish`` (see
:mod:`reportgen.families.probabilities.maskedlm`); there the stored state is the input of
the head's last (affine) layer at the mask. Risk prompts are then scored (margins per
prompt) and, for decoders, a few are continued greedily.

Every model's head path is checked against the model's own log-probabilities (the base's
with the head exactly as stored); a head that is not reproduced makes the distributions
"not available", never scored wrongly. Risk margins need only each model's own
log-probabilities of the same strings, so they are scored even where the distributions
cannot be compared (a candidate whose tokenizer grew, an LM head whose logit transform
reportgen does not reproduce): ``meta["unavailable"]`` then says why the distributions are
missing, and ``continuation_logprobs`` is still there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from reportgen.capture.forward import Batch, Extra, backbone
from reportgen.core.numfmt import plural
from reportgen.core.progress import Progress
from reportgen.families.probabilities.head import (
    StoredHead,
    affine_of,
    logit_transform,
    save_head,
)
from reportgen.families.probabilities.metrics import ShiftAccumulator
from reportgen.families.probabilities.shared import NAME
from reportgen.families.probabilities.store import (
    RowReader,
    RowWriter,
    StoreError,
    head_logits,
    header_path,
)

BLOCK_ROWS = 256
#: In every capture's settings: bump when what the collector computes changes. 2: the LM
#: head's output goes through the model's own logit transforms, checked by one forward.
#: 3: risk margins are scored even when the distributions cannot be compared.
#: 4: the base stores hidden states and its head, not log-probabilities.
VERSION = 4
#: Tokens of the first scored text the whole model reads once to check the LM-head path.
HEAD_CHECK_TOKENS = 16
#: Largest difference (nats) between the model's own log-probabilities and the collector's.
HEAD_CHECK_TOLERANCE = 1e-3
CAUSAL_SCHEME = ("causal LM: the next-token distribution at every non-padding position of "
                 "each domain and risk probe text (the last position predicts past the text)")


class ProbabilityCollector:
    """One model's side: the base writes its store, a candidate compares against it."""

    name = NAME

    def __init__(self, kind: str, groups: dict[int, str], settings: dict[str, Any],
                 risk: list[tuple[str, list[Any]]], base: Extra | None) -> None:
        self.kind = kind  # 'causal-lm' | 'masked-lm'
        self.groups = groups  # scored row -> probe set name
        self.cfg = settings
        self.risk = risk  # (set name, RiskPrompt list)
        self.base = base
        self.unavailable: str | None = None  # no scoring at all (no LM head)
        self.unpaired: str | None = None  # why distributions are not compared, margins are
        self.writer: RowWriter | None = None
        self.acc: ShiftAccumulator | None = None
        self.pos: list[np.ndarray] = []  # (row, token index, token id) per scored position
        self.calls = {"masked_copies": 0, "risk_scoring": 0, "greedy": 0}
        self.greedy: list[str] | None = None

    def settings(self) -> str:
        return json.dumps(self.cfg, sort_keys=True)

    def start(self, model: Any, tokenizer: Any, texts: list[str], workdir: Path) -> None:
        self.model, self.tok, self.texts = model, tokenizer, texts
        head = model.get_output_embeddings()
        if head is None:
            self.unavailable = "the model has no language-model head"
            return
        self.vocab = int(head.weight.shape[0])
        self.head = head
        self.transform = logit_transform(model.config)
        from reportgen.capture.offload import execution_device

        device, dtype = execution_device(head), next(head.parameters()).dtype  # meta if offloaded
        if self.base is None:
            weight, bias = affine_of(head)
            self.head_files, self.head_sha = save_head(weight, bias, workdir)
            # the head exactly as stored, on the model's device and in its dtype: the head
            # check compares it with the model's own output, so a candidate uses a checked head
            self.stored = StoredHead(weight, bias, self.transform, device, dtype)
            self.head_dtype = str(dtype).removeprefix("torch.")
            self.writer = RowWriter(workdir / "hidden.bin", self.stored.width, kind="hidden")
            return
        self.unpaired = self._mismatch()
        if self.unpaired is None:
            import torch

            m = self.base.meta
            self.reader = iter(RowReader(self.base.files["hidden"]))
            files = {k: self.base.files[k] for k in ("head_weight", "head_bias")
                     if k in self.base.files}
            stored_dtype = getattr(torch, str(m["head_dtype"]), None)
            if not isinstance(stored_dtype, torch.dtype):
                raise StoreError(f"the base's stored head has no dtype ({m['head_dtype']!r})")
            self.stored = StoredHead.load(files, m["transform"], device, stored_dtype)
            self.acc = ShiftAccumulator(self.vocab, self.cfg["top_positions"])

    def _mismatch(self) -> str | None:
        """Why the base's positions cannot be paired with this model's, if they cannot."""
        b = self.base
        if b is None or b.meta.get("unavailable"):
            return "the base model was not scored" + (
                f" ({b.meta['unavailable']})" if b is not None else "")
        if int(b.meta["vocab_size"]) != self.vocab:
            return (f"the language-model heads score different numbers of tokens (base "
                    f"{b.meta['vocab_size']}, candidate {self.vocab}), and next-token "
                    "distributions are compared only over the same vocabulary")
        ids = [self._ids(r) for r in sorted(self.groups)]
        if np.concatenate(ids).tolist() != b.arrays["text_ids"].tolist():
            return ("the candidate's tokenizer splits the probe texts differently from the "
                    "base's, so positions cannot be paired")
        return None

    def _ids(self, row: int) -> np.ndarray:
        return np.asarray(self.tok(self.texts[row], truncation=True,
                                   max_length=self.cfg["max_length"])["input_ids"])

    def batch(self, b: Batch) -> None:
        if self.unavailable or self.unpaired or self.kind != "causal-lm":
            return
        import torch

        sel = [j for j, r in enumerate(b.rows) if r in self.groups]
        if not sel:
            return
        mask = b.attention_mask[sel].bool()
        hidden = b.output.last_hidden_state[sel][mask]  # (n_valid, d), text by text
        ids = b.input_ids[sel][mask]
        rows = torch.tensor([b.rows[j] for j in sel]).repeat_interleave(mask.sum(1).cpu())
        tix = torch.cat([torch.arange(int(n)) for n in mask.sum(1).cpu()])
        for s in range(0, hidden.shape[0], BLOCK_ROWS):
            self._block(rows[s:s + BLOCK_ROWS].numpy(), tix[s:s + BLOCK_ROWS].numpy(),
                        ids[s:s + BLOCK_ROWS].cpu().numpy(), hidden[s:s + BLOCK_ROWS])

    def _block(self, rows: np.ndarray, tix: np.ndarray, ids: np.ndarray, hidden: Any,
               own_lp: Any = None) -> None:
        """Store the base's hidden states, or compare a candidate's block with the base's.

        ``hidden``: the states the LM head reads, one row per position; ``own_lp``: this
        model's log-probabilities when its pass computed them already (masked LMs)."""
        import torch

        self.pos.append(np.stack([rows, tix, ids], axis=1).astype(np.int64))
        if self.writer is not None:
            self.writer.append(hidden.detach().float().cpu().numpy())
            return
        assert self.acc is not None
        base = next(self.reader, None)
        if base is None or base.shape[0] != hidden.shape[0]:
            raise StoreError(f"the base store's blocks do not line up with this pass at "
                             f"position {self.acc.n} (different probes or batches)")
        if own_lp is None:
            own_lp = self._log_softmax(head_logits(self.model, self.head, hidden), 0)
        lp = self._log_softmax(self.stored.logits(torch.from_numpy(base)), 1)
        self.acc.update(lp.cpu(), own_lp.cpu(), [self.groups[int(r)] for r in rows])

    def _log_softmax(self, logits: Any, slot: int) -> Any:
        """Log-softmax into one of two reused (BLOCK_ROWS, V) buffers: a fresh block-sized
        tensor per block is mapped and zeroed by the OS page by page, which on a CPU costs
        about as much as the log-softmax itself."""
        import torch

        n, v = logits.shape
        bufs = self.__dict__.setdefault("_lp_buffers", {})
        buf = bufs.get(slot)
        if buf is None or buf.shape[1] != v or buf.shape[0] < n or buf.device != logits.device:
            buf = bufs[slot] = torch.empty(max(n, BLOCK_ROWS), v, device=logits.device)
        return torch.log_softmax(logits.float(), -1, out=buf[:n])

    def finish(self, progress: Progress) -> Extra:
        if self.unavailable:
            if self.writer is not None:
                self.writer.abort()
            return Extra(meta={"unavailable": self.unavailable})
        counter = _count_calls(self.model, self.calls)
        try:
            problem = self.unpaired
            if problem is None and self.kind == "causal-lm":
                problem = self._head_check()
            if problem is None and self.kind == "masked-lm":
                problem = self._masked_pass(progress)
                self.calls["masked_copies"] = self.calls.pop("_running", 0)
            if problem is None:
                extra = self._result()
            else:  # no distributions; the margins below still compare
                if self.writer is not None:
                    self.writer.abort()
                extra = Extra(meta={"unavailable": problem})
            extra.arrays.update(self._behaviour(progress))
            if self.greedy is not None:
                extra.meta["greedy"] = self.greedy
        finally:
            counter.remove()
        extra.meta["forward_calls"] = dict(self.calls)
        return extra

    def _head_check(self) -> str | None:
        """One short forward of the whole model: its own log-probabilities must be the ones
        this collector computes from the last hidden state (the base: with its head as
        stored for the candidates; a candidate: :func:`head_logits`); a model that
        transforms its logits in some other way is reported, never scored wrongly."""
        import torch

        row = min(self.groups) if self.groups else None
        ids = self._ids(row)[:HEAD_CHECK_TOKENS] if row is not None else np.zeros(0)
        if len(ids) == 0:
            return None
        device = self.model.get_input_embeddings().weight.device
        x = torch.as_tensor(ids, dtype=torch.long, device=device)[None]
        body = backbone(self.model)
        seen: list[Any] = []
        hook = body.register_forward_hook(lambda _m, _a, out: seen.append(
            out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]))
        try:
            with torch.inference_mode():
                own = torch.log_softmax(self.model(input_ids=x).logits.float(), -1)
                ours = torch.log_softmax(self._logits(seen[0]).float(), -1)
        finally:
            hook.remove()
        self.calls["head_check"] = self.calls.pop("_running", 0)
        return _gap_problem(own, ours)

    def _logits(self, hidden: Any) -> Any:
        if self.writer is not None:
            return self.stored.logits(hidden)
        return head_logits(self.model, self.head, hidden)

    def _masked_pass(self, progress: Progress) -> str | None:
        """Masked copies through the whole model; the base also checks its stored head on
        the first batch (the model's own log-probabilities at the masks)."""
        import torch

        from reportgen.families.probabilities.maskedlm import mask_plan, masked_logprobs

        texts = {r: self._ids(r).tolist() for r in self.groups}
        copies = mask_plan(self.tok, texts, self.cfg["masked_positions"], self.cfg["seed"])
        checked = self.writer is None
        with progress.counter("masked copies", len(copies)) as advance:
            for chunk, lp, hidden in masked_logprobs(self.model, self.tok, copies,
                                                     self.cfg["batch_size"], hidden=True):
                if not checked:
                    ours = torch.log_softmax(self.stored.logits(hidden).float(), -1)
                    if problem := _gap_problem(lp, ours):
                        return problem
                    checked = True
                self._block(np.array([c.row for c in chunk]),
                            np.array([c.position for c in chunk]),
                            np.array([c.ids[c.position] for c in chunk]), hidden, lp)
                advance(len(chunk))
        return None

    def _result(self) -> Extra:
        pos = np.concatenate(self.pos) if self.pos else np.zeros((0, 3), np.int64)
        if self.writer is not None:
            path = self.writer.close()
            text_ids = np.concatenate([self._ids(r) for r in sorted(self.groups)]) \
                if self.groups else np.zeros(0, np.int64)
            # the header travels as a second file; the cache names it so that the reader
            # still finds it beside the data ("x.NAME.f.hidden" + ".json")
            header = header_path(path)
            sha = json.loads(header.read_text())["sha256"]
            meta = {"vocab_size": self.vocab, "sha256": sha, "head_sha256": self.head_sha,
                    "transform": self.transform, "head_dtype": self.head_dtype}
            return Extra(arrays={"positions": pos, "text_ids": text_ids.astype(np.int64)},
                         meta=meta, files={"hidden": path, "hidden.json": header,
                                           **self.head_files})
        assert self.acc is not None
        if next(self.reader, None) is not None:
            raise StoreError("the base store has more blocks than this pass produced")
        from reportgen.families.probabilities.shift import shift_arrays, top_position_rows

        res = self.acc.result()
        arrays, names = shift_arrays(res)
        arrays["positions"] = pos
        top = top_position_rows(res, pos, self.tok, self.texts, self.cfg["max_length"])
        return Extra(arrays=arrays, meta={"groups": names, "top_positions": top,
                                          "vocab_size": self.vocab})

    def _behaviour(self, progress: Progress) -> dict[str, np.ndarray]:
        """Per-continuation log-probabilities of every risk prompt, and greedy continuations."""
        from reportgen.families.behavior.metrics import continuation_logprobs

        pairs = [(p.prompt, c) for _, prompts in self.risk for p in prompts
                 for c in (*p.safe, *p.unsafe)]
        if not pairs:
            return {}
        progress.say(f"scoring {plural(len(pairs), 'risk continuation')}")
        if self.kind == "masked-lm":
            from reportgen.families.probabilities.maskedlm import pseudo_loglik

            lp = pseudo_loglik(self.model, self.tok, pairs, self.cfg["batch_size"],
                               self.cfg["max_length"])
        else:
            lp = continuation_logprobs(self.model, self.tok, pairs, self.cfg["batch_size"])
        self.calls["risk_scoring"] = self.calls.pop("_running", 0)
        out = {"continuation_logprobs": lp}
        if self.kind == "causal-lm" and self.cfg["greedy_prompts"]:
            self.greedy = self._greedy()
            self.calls["greedy"] = self.calls.pop("_running", 0)
        return out

    def _greedy(self) -> list[str]:
        from reportgen.families.behavior.metrics import greedy_continuations

        prompts = [p.prompt for _, ps in self.risk for p in ps[:self.cfg["greedy_prompts"]]]
        return greedy_continuations(self.model, self.tok, prompts, self.cfg["max_new_tokens"])


def _gap_problem(own: Any, ours: Any) -> str | None:
    """Why the collector's log-probabilities cannot stand for the model's own, if they cannot."""
    gap = float((own.float() - ours.float().to(own.device)).abs().max())
    if gap > HEAD_CHECK_TOLERANCE:
        return ("the model's own next-token log-probabilities differ from its LM head's "
                f"by up to {gap:.3g} nats (it transforms its logits in a way reportgen "
                "does not reproduce)")
    return None


def _count_calls(model: Any, calls: dict[str, int]) -> Any:
    """Count the extra forward passes of ``finish`` (declared in the capture's facts)."""
    body = backbone(model)

    def hook(*_: Any) -> None:
        calls["_running"] = calls.get("_running", 0) + 1

    return body.register_forward_hook(hook)
