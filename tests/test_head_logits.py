"""Log-probabilities from the LM head equal the model's own, also for models that transform
their logits after the head (soft-capping, scaling)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers as tf

from reportgen.capture.forward import backbone
from reportgen.families.probabilities.store import head_logits, model_logprob_blocks

SMALL = {"vocab_size": 97, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
         "num_attention_heads": 2, "num_key_value_heads": 1}
MODELS = {
    "gemma2 soft-capping": (tf.Gemma2Config, tf.Gemma2ForCausalLM,
                            {"head_dim": 16, "final_logit_softcapping": 3.0}),
    "cohere logit_scale": (tf.CohereConfig, tf.CohereForCausalLM, {"logit_scale": 0.25}),
    "granite logits_scaling": (tf.GraniteConfig, tf.GraniteForCausalLM,
                               {"logits_scaling": 4.0}),
    "gpt2 plain": (tf.GPT2Config, tf.GPT2LMHeadModel,
                   {"n_embd": 32, "n_layer": 2, "n_head": 2, "vocab_size": 97}),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_head_logits_equal_the_models_own(name: str) -> None:
    cfg_cls, model_cls, extra = MODELS[name]
    kw = extra if cfg_cls is tf.GPT2Config else {**SMALL, **extra}
    torch.manual_seed(0)
    model = model_cls(cfg_cls(**kw)).eval()
    with torch.no_grad():  # random weights: scale the head up so the transforms matter
        model.get_output_embeddings().weight.mul_(20)
    ids = torch.randint(0, 97, (2, 7))
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    with torch.no_grad():
        want = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)
        hidden = backbone(model)(input_ids=ids, attention_mask=mask).last_hidden_state
        got = torch.log_softmax(head_logits(model, model.get_output_embeddings(), hidden), -1)
        plain = torch.log_softmax(model.get_output_embeddings()(hidden), -1)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    if name != "gpt2 plain":  # the head alone would have been wrong
        assert (plain - want).abs().max() > 0.1
    blocks = list(model_logprob_blocks(model, [(ids, mask)], block_rows=4))
    torch.testing.assert_close(torch.from_numpy(np.concatenate(blocks)),
                               want[mask.bool()], atol=1e-4, rtol=1e-4)
