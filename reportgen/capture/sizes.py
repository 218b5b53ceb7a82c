"""A model's sizes from its folder without its weights: what ``reportgen plan`` needs.

The parameter count comes from the config's shapes: the model is built on PyTorch's ``meta``
device (tensors with shapes and no storage, so an 8B model costs nothing), and its unique
parameters counted the way the capture counts a loaded model (tied weights once). That is
exact for every architecture transformers knows, where a formula per family would miss a
bias, a norm or a tied head. The probe texts are tokenized as the capture tokenizes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelSizes:
    parameters: int
    hidden_size: int
    n_layers: int
    embedding_rows: int  # rows of the input embedding (the vocabulary the capture stores)
    head_rows: int  # rows of the LM head (0 without one): the width of a next-token distribution
    head_bias: bool  # the LM head adds a bias (stored beside its weight)
    token_counts: tuple[int, ...]  # per probe text, as the capture reads it
    maskable_counts: tuple[int, ...]  # per probe text, tokens that are not special


def model_sizes(folder: Path, kind: str, texts: list[str], max_length: int,
                trust_remote_code: bool = False) -> ModelSizes:
    """Sizes of the model in ``folder`` (config and tokenizer only) and its probe tokens."""
    import torch
    import transformers as tf

    from reportgen.capture.forward import prepare_tokenizer
    from reportgen.spec.resolve import auto_class, model_shape, parameter_count

    tf.utils.logging.set_verbosity_error()
    config = tf.AutoConfig.from_pretrained(folder, local_files_only=True,
                                           trust_remote_code=trust_remote_code)
    with torch.device("meta"):
        model = auto_class(kind).from_config(config, trust_remote_code=trust_remote_code)
    head = model.get_output_embeddings() if kind != "encoder" else None
    d, layers = model_shape(config.to_dict())
    tok = prepare_tokenizer(tf.AutoTokenizer.from_pretrained(
        folder, local_files_only=True, trust_remote_code=trust_remote_code))
    ids = tok(texts, truncation=True, max_length=max_length,
              add_special_tokens=True)["input_ids"] if texts else []
    special = set(tok.all_special_ids)
    return ModelSizes(parameter_count(model), d, layers,
                      int(model.get_input_embeddings().weight.shape[0]),
                      int(head.weight.shape[0]) if head is not None else 0,
                      getattr(head, "bias", None) is not None,
                      tuple(len(x) for x in ids),
                      tuple(sum(t not in special for t in x) for x in ids))
