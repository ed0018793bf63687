"""A word-level tokenizer for offline task tests: every word of the given texts is one token,
and two-digit groups are split off as GPT-2 does for years (" 1732" -> " 17", "32").

The hub tokenizers cannot be downloaded here, so the text tasks are tested with this one
and with random-weight models of the hub architectures.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from transformer_lens import HookedTransformer
from transformers import PreTrainedTokenizerFast

from bench.zoo import load_model

SPECIAL = "<|endoftext|>"
UNKNOWN = "[UNK]"


def _pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Split(Regex(r"\d\d"), behavior="isolated")]
    )


def word_level_tokenizer(texts: Iterable[str]) -> PreTrainedTokenizerFast:
    """A tokenizer whose vocabulary is exactly the words in `texts` (plus BOS/EOS/PAD and UNK)."""
    pre = _pre_tokenizer()
    words = sorted({piece for text in texts for piece, _ in pre.pre_tokenize_str(text)})
    vocab = {SPECIAL: 0, UNKNOWN: 1, **{word: i + 2 for i, word in enumerate(words)}}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNKNOWN))
    backend.pre_tokenizer = pre
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=SPECIAL,
        eos_token=SPECIAL,
        pad_token=SPECIAL,
        unk_token=UNKNOWN,
        name_or_path="word-level-test",
    )


def without_words(texts: Iterable[str], drop: Iterable[str]) -> list[str]:
    """`texts` with every word in `drop` taken out (to build a tokenizer that lacks them)."""
    dropped = set(drop)
    return [" ".join(word for word in text.split() if word not in dropped) for text in texts]


def token_id(tokenizer: PreTrainedTokenizerFast, word: str) -> int:
    return tokenizer.convert_tokens_to_ids(word)


def random_model_with(tokenizer: PreTrainedTokenizerFast, name: str = "random:gpt2") -> HookedTransformer:
    """A random-weight hub architecture that tokenizes with `tokenizer`."""
    model = load_model(name)
    model.tokenizer = tokenizer
    return model
