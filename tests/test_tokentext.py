"""Token pieces joined one by one read like the tokenizer's own decoding of the sequence."""

from __future__ import annotations

import pytest
import transformers as tf
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from reportgen.core.tokentext import running_pieces

TEXTS = ["The concept of dividends is unbelievable, isn't it?",
         "A loan's interest compounds daily; pay it back."]


def _sentencepiece_like() -> tf.PreTrainedTokenizerFast:
    """A Llama-style tokenizer: words carry a leading '▁' that decode() turns into a space."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(TEXTS * 5, trainers.BpeTrainer(vocab_size=120,
                                                          special_tokens=["<unk>", "<s>"]))
    return tf.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>")


@pytest.mark.parametrize("which", ["tiny-gpt2", "tiny-distilbert", "sentencepiece"])
def test_joined_pieces_read_like_the_decoded_text(which: str, tiny_models) -> None:
    tok = (_sentencepiece_like() if which == "sentencepiece"
           else tf.AutoTokenizer.from_pretrained(tiny_models[which]))
    for text in TEXTS:
        ids = tok(text)["input_ids"]
        pieces = running_pieces(tok, ids)
        joined = "".join(pieces[i] for i in ids)
        assert joined.strip() == tok.decode(ids, clean_up_tokenization_spaces=False).strip()
        # the naive join of single-token decodes runs words together (or keeps '##')
        naive = "".join(tok.decode([i]) for i in ids)
        assert which == "tiny-gpt2" or naive != joined
