"""Tiny random decoders of the families people fine-tune (Llama, Qwen2, Mistral, Gemma 2,
Phi-3), each with a byte-level BPE trained here and a perturbed "fine-tune", plus base →
instruct pairs whose tokenizer adds chat special tokens. Built in seconds, once per session.
Below them, the independent computations the audits are checked against: each model's own
transformers outputs, one unpadded text at a time, and numpy/scipy over them.

The shapes are small (hidden 32, 2 layers) but keep what makes each family different:
grouped-query attention, Qwen2's q/k/v biases and tied embeddings, Mistral's sliding window
(shorter than the longer probe texts), Gemma 2's scaled embeddings, tied head, attention and
final-logit soft-capping (a small cap, so it changes the log-probabilities), Phi-3's fused
``qkv_proj`` and ``gate_up_proj``. Weights are drawn wider than the default init
(``initializer_range``) so that random models make peaked, distinguishable predictions.
The Llama checkpoints are stored in bfloat16, as Llama releases are; the rest in float32.
Transformers loads a checkpoint in its stored dtype by default, so :func:`load` (and the
audit) ask for float32.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
import transformers as tf
from safetensors.torch import load_file
from scipy.spatial.distance import cosine
from scipy.special import log_softmax, logsumexp
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

VOCAB_SIZE = 512
MAX_LENGTH = 64
CHAT_TOKENS = ("<|im_start|>", "<|im_end|>")
#: ChatML, opening with the BOS as Mistral's and Llama's templates do (Qwen2 has none)
CHAT_TEMPLATE = ("{{ bos_token }}{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
                 "{{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}"
                 "<|im_start|>assistant\n{% endif %}")
SHAPE = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64,
         "initializer_range": 0.1}


@dataclass(frozen=True)
class Arch:
    """One family: its classes, config extras and tokenizer conventions."""

    config: type
    model: type
    extra: Mapping[str, Any] = field(default_factory=dict)
    bos: str | None = None  # prepended to every text, as the family's tokenizers do
    eos: str = "</s>"
    pad: str | None = None  # None: the audit pads with eos
    dtype: torch.dtype = torch.float32  # of the saved weights (the audit loads float32)


ARCHS: dict[str, Arch] = {
    "llama": Arch(tf.LlamaConfig, tf.LlamaForCausalLM, {"head_dim": 8}, bos="<s>",
                  dtype=torch.bfloat16),
    "qwen2": Arch(tf.Qwen2Config, tf.Qwen2ForCausalLM, {"tie_word_embeddings": True},
                  eos="<|endoftext|>", pad="<|endoftext|>"),
    "mistral": Arch(tf.MistralConfig, tf.MistralForCausalLM,
                    {"head_dim": 8, "sliding_window": 6}, bos="<s>"),
    "gemma2": Arch(tf.Gemma2Config, tf.Gemma2ForCausalLM,
                   {"head_dim": 8, "query_pre_attn_scalar": 8, "final_logit_softcapping": 0.5,
                    "attn_logit_softcapping": 2.0, "sliding_window": 6},
                   bos="<bos>", eos="<eos>", pad="<pad>"),
    "phi3": Arch(tf.Phi3Config, tf.Phi3ForCausalLM, {}, bos="<s>", eos="<|endoftext|>"),
}


def train_tokenizer(texts: list[str], arch: Arch) -> tf.PreTrainedTokenizerFast:
    """A byte-level BPE with the family's special tokens; BOS prepended where it has one."""
    specials = list(dict.fromkeys(t for t in (arch.pad, arch.bos, arch.eos) if t))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, special_tokens=specials, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    steps: list[Any] = [processors.ByteLevel(trim_offsets=False)]
    if arch.bos:
        steps.append(processors.TemplateProcessing(
            single=f"{arch.bos} $A", pair=f"{arch.bos} $A $B",
            special_tokens=[(arch.bos, tok.token_to_id(arch.bos))]))
    tok.post_processor = processors.Sequence(steps)
    return tf.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=arch.bos, eos_token=arch.eos, pad_token=arch.pad,
        model_max_length=MAX_LENGTH, model_input_names=["input_ids", "attention_mask"])


def _config(arch: Arch, tok: tf.PreTrainedTokenizerBase) -> Any:
    return arch.config(vocab_size=len(tok), bos_token_id=tok.bos_token_id,
                       eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                       **SHAPE, **arch.extra)


def _make_base(name: str, builder: ModuleType) -> Callable[[Path], dict[str, object]]:
    arch = ARCHS[name]

    def make(folder: Path) -> dict[str, object]:
        with builder.deterministic(builder.TINY_SEED):
            tok = train_tokenizer(builder._tiny_texts(), arch)
            model = arch.model(_config(arch, tok)).eval().to(arch.dtype)
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
        return {"seed": builder.TINY_SEED, "architecture": type(model).__name__}

    return make


def _make_perturbed(src: Path, builder: ModuleType) -> Callable[[Path], dict[str, object]]:
    def make(folder: Path) -> dict[str, object]:
        model = tf.AutoModelForCausalLM.from_pretrained(src).eval()
        builder.perturb(model, builder.TINY_PERTURBATION, builder.TINY_SEED + 1)
        model.save_pretrained(folder)
        builder.copy_tokenizer(src, folder)
        return {"seed": builder.TINY_SEED + 1, "perturbation": builder.TINY_PERTURBATION}

    return make


def _make_instruct(src: Path, builder: ModuleType) -> Callable[[Path], dict[str, object]]:
    """The base with chat special tokens added (the end-of-turn one as its EOS), its
    embeddings (and untied head) resized to the grown tokenizer, the new rows initialised by
    transformers, then perturbed, and a chat template in its tokenizer_config.json."""

    def make(folder: Path) -> dict[str, object]:
        tok = tf.AutoTokenizer.from_pretrained(src)
        added = tok.add_special_tokens({"additional_special_tokens": list(CHAT_TOKENS)})
        tok.eos_token = CHAT_TOKENS[1]
        tok.chat_template = CHAT_TEMPLATE
        with builder.deterministic(builder.TINY_SEED + 2):
            model = tf.AutoModelForCausalLM.from_pretrained(src).eval()
            model.resize_token_embeddings(len(tok))
            builder.perturb(model, builder.TINY_PERTURBATION, builder.TINY_SEED + 2)
        model.save_pretrained(folder)
        tok.save_pretrained(folder, save_jinja_files=False)  # the template in the config
        return {"seed": builder.TINY_SEED + 2, "added_tokens": added}

    return make


#: Families with a base → instruct pair: tied (Qwen2) and untied (Mistral) embeddings.
INSTRUCT = ("qwen2", "mistral")


def build_arch_models(root: Path, builder: ModuleType) -> dict[str, Path]:
    """``tiny-<arch>`` and ``tiny-<arch>-ft`` for every family, ``tiny-<arch>-instruct``
    for those of :data:`INSTRUCT`."""
    out: dict[str, Path] = {}
    for name in ARCHS:
        base = builder.build_folder(root, f"tiny-{name}", _make_base(name, builder),
                                    builder._quiet)
        out[f"tiny-{name}"] = base
        out[f"tiny-{name}-ft"] = builder.build_folder(
            root, f"tiny-{name}-ft", _make_perturbed(base, builder), builder._quiet)
    for name in INSTRUCT:
        out[f"tiny-{name}-instruct"] = builder.build_folder(
            root, f"tiny-{name}-instruct", _make_instruct(out[f"tiny-{name}"], builder),
            builder._quiet)
    return out


@functools.cache
def load(folder: Path) -> tuple[Any, Any]:
    """(float32 model in eval mode, tokenizer), loaded once per folder."""
    model = tf.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    return model, tf.AutoTokenizer.from_pretrained(folder)


def hidden_states(folder: Path, texts: list[str]) -> list[torch.Tensor]:
    """Per text, (layers + 1, tokens, d) float64 hidden states, one text at a time."""
    model, tok = load(folder)
    out = []
    with torch.no_grad():
        for t in texts:
            hs = model(**tok(t, return_tensors="pt"), output_hidden_states=True).hidden_states
            out.append(torch.stack([h[0] for h in hs]).double())
    return out


# ------------------------------------------------------------------ independent references


def pooled(folder: Path, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(layers, texts, d) last-token and mean-pooled states, from transformers, unbatched."""
    hs = hidden_states(folder, texts)
    return (np.stack([h[:, -1].numpy() for h in hs], 1),
            np.stack([h.mean(1).numpy() for h in hs], 1))


def cos_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """scipy's cosine distance of each pair of rows."""
    return np.array([cosine(x, y) for x, y in zip(a, b, strict=True)])


def embeddings(folder: Path) -> np.ndarray:
    """The input-embedding matrix in float64."""
    return load(folder)[0].get_input_embeddings().weight.detach().double().numpy()


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows at unit length; a zero row (a padding token's embedding) stays zero, so its
    similarity to every row is 0, as reportgen defines it."""
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


def knn_jaccard(x: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """Per row, Jaccard of the k nearest rows by cosine (self excluded, ties to the lower
    index), a zero row being at similarity 0 to all."""
    def knn(z: np.ndarray) -> list[set[int]]:
        s = unit_rows(z) @ unit_rows(z).T
        np.fill_diagonal(s, -np.inf)
        return [set(np.argsort(-row, kind="stable")[:k].tolist()) for row in s]

    return np.array([len(a & b) / len(a | b) for a, b in zip(knn(x), knn(y), strict=True)])


def stored_tensors(folder: Path) -> dict[str, np.ndarray]:
    """The checkpoint's tensors as stored, in float64 (numpy has no bfloat16)."""
    return {n: t.double().numpy() for n, t in load_file(folder / "model.safetensors").items()}


def np_drift(b: dict, c: dict) -> dict[str, float]:
    """‖c − b‖ / ‖b‖ per tensor of ``b`` that is not all zero."""
    return {n: float(np.linalg.norm(c[n] - b[n]) / np.linalg.norm(b[n]))
            for n in b if np.any(b[n])}


def int8_rounded(folder: Path, dtype: torch.dtype) -> dict[str, np.ndarray]:
    """Each stored tensor moved by what int8 rounding does to it once loaded in ``dtype``."""
    from reportgen.capture import loading

    model = tf.AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    before = {n: p.detach().double().numpy() for n, p in model.state_dict().items()}
    loading.quantize_roundtrip(model, 8)
    after = model.state_dict()
    return {n: w + after[n].double().numpy() - before[n]
            for n, w in stored_tensors(folder).items()}


def logits(folder: Path, ids: list[int]) -> np.ndarray:
    """The model's own logits (logit transforms included) for one unpadded sequence."""
    with torch.no_grad():
        return load(folder)[0](input_ids=torch.tensor([ids])).logits[0].double().numpy()


def logprobs(folder: Path, texts: list[str]) -> np.ndarray:
    """Next-token log-probabilities at every position of each text, read alone."""
    tok = load(folder)[1]
    return np.concatenate([log_softmax(logits(folder, tok(t)["input_ids"]), axis=-1)
                           for t in texts])


def margin(folder: Path, r: dict) -> float:
    """log Σ p(safe | prompt) − log Σ p(unsafe | prompt), token by token."""
    tok = load(folder)[1]

    def lp(cont: str) -> float:
        p, full = tok(r["prompt"])["input_ids"], tok(r["prompt"] + cont)["input_ids"]
        assert full[:len(p)] == p
        ls = log_softmax(logits(folder, full), axis=-1)
        return sum(ls[i - 1, full[i]] for i in range(len(p), len(full)))

    return float(logsumexp([lp(c) for c in r["safe"]]) - logsumexp([lp(c) for c in r["unsafe"]]))


def chat_ids(folder: Path, prompt: str) -> list[int]:
    """The token ids of ``prompt`` as one user turn plus the assistant-turn prefix, from
    transformers' own ``apply_chat_template`` of the model in ``folder``."""
    turn = [{"role": "user", "content": prompt}]
    return list(load(folder)[1].apply_chat_template(turn, add_generation_prompt=True)
                ["input_ids"])


def chat_text(folder: Path, prompt: str) -> str:
    """The rendered text of ``prompt`` without the template's BOS (each model's tokenizer adds
    its own), as another model reads it."""
    turn = [{"role": "user", "content": prompt}]
    tok = load(folder)[1]
    text = tok.apply_chat_template(turn, tokenize=False, add_generation_prompt=True)
    return text.removeprefix(tok.bos_token or "")


def margin_ids(folder: Path, prompt: list[int], r: dict, cont_ids: Callable[[str], list[int]]
               ) -> float:
    """The margin of ``r``'s continuations after the token ids ``prompt``; ``cont_ids`` gives
    the ids of the prompt followed by a continuation (its first ``len(prompt)`` must match).
    Past the models' context (:data:`MAX_LENGTH` positions) the oldest tokens are dropped."""
    def lp(cont: str) -> float:
        full = cont_ids(cont)
        assert full[:len(prompt)] == prompt
        cut = max(0, len(full) - MAX_LENGTH)
        ls = log_softmax(logits(folder, full[cut:]), axis=-1)
        return sum(ls[i - 1 - cut, full[i]] for i in range(len(prompt), len(full)))

    return float(logsumexp([lp(c) for c in r["safe"]]) - logsumexp([lp(c) for c in r["unsafe"]]))


def ce_spliced(folder: Path, texts: list[str], layer: int,
               replace: Callable[[torch.Tensor], torch.Tensor] | None = None) -> float:
    """Token-weighted next-token CE, text by text, with the output of the block that makes
    ``hidden_states[layer]`` replaced by ``replace`` of it."""
    model, tok = load(folder)

    def hook(_m, _a, out):
        return (replace(out[0]), *out[1:]) if isinstance(out, tuple) else replace(out)

    block = model.model.layers[layer - 1]
    handle = block.register_forward_hook(hook) if replace else None
    total, n = 0.0, 0
    with torch.no_grad():
        for t in texts:
            ids = tok(t, return_tensors="pt")["input_ids"]
            out = model(input_ids=ids).logits[0, :-1]
            total += float(torch.nn.functional.cross_entropy(out, ids[0, 1:], reduction="sum"))
            n += ids.shape[1] - 1
    if handle:
        handle.remove()
    return total / n
