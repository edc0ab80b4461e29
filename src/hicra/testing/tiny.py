"""A tiny, randomly initialised chat model with a locally trained tokenizer: smoke tests, no hub.

Training on it exercises the whole pipeline in about a second a step on a CPU; it learns nothing
useful. `build_tiny_model(folder)` writes a normal Hugging Face folder that any hicra command takes.
"""

from __future__ import annotations

import string
from pathlib import Path

CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% endif %}"
)

CORPUS = [
    "Let's break this down step by step. So the answer is 42.",
    "Wait, no, that's not right. Let me verify: 3 + 4 = 7, so we can use the fact that x = 7.",
    "Hmm, maybe I can try a different approach. Alternatively, note that the sum is even.",
    "We know that the triangle has sides 3, 4 and 5. Therefore the area is 6.",
    "But wait, I need to double-check the constraints again. Also, some values repeat.",
    "First, we need to find the roots. Then substitute: f(2) = 4 - 4 + 1 = 1.",
    "What is 2 + 3? Please put the final answer within \\boxed{5}. The answer is 0 1 2 3 4 5 6 7 8 9.",
] * 20


def punctuation_reward(completions: list, **_: object) -> list[float]:
    """A deterministic reward with spread inside groups for a random model: its punctuation count.

    Pair it with `punctuation_grams()`, under which punctuation marks are the planning tokens, so
    that smoke tests see planning tokens with non-zero advantages in every batch.
    """
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [float(sum(ch in string.punctuation for ch in text)) for text in texts]


def punctuation_grams():
    """Every ASCII punctuation mark as a "strategic gram" (for tests of a random tiny model)."""
    from hicra.grams import StrategicGrams

    return StrategicGrams(list(string.punctuation), name="punctuation")


def smoke_config(output_dir: str | Path, **overrides: object):
    """An HICRAConfig for a few fast CPU steps on the tiny model (tests, benchmarks, examples)."""
    from hicra.train.config import HICRAConfig

    settings: dict = {
        "output_dir": str(output_dir),
        "max_steps": 2,
        "per_device_train_batch_size": 8,
        "num_generations": 4,
        "max_completion_length": 12,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "use_cpu": True,
        "gradient_checkpointing": False,
        "learning_rate": 1e-2,
        "seed": 7,
    }
    settings.update(overrides)
    return HICRAConfig(**settings)


def build_tiny_tokenizer(vocab_size: int = 600, corpus: list[str] | None = None):
    """A byte-level BPE tokenizer trained on a small reasoning corpus, with a ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus or CORPUS, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def build_tiny_model(
    folder: str | Path,
    hidden_size: int = 64,
    layers: int = 2,
    seed: int = 0,
    eos_scale: float = 1.0,
) -> Path:
    """Write a tiny random Qwen2 chat model and its tokenizer to `folder`; return the folder.

    `eos_scale` > 1 scales the end-of-sequence embedding (tied to the output layer), so that the
    random model stops early now and then: completions of varied length (at 40, about half of
    12-token completions end early when sampled at temperature 1), for tests of length-dependent
    credit.
    """
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig, Qwen2Config

    folder = Path(folder)
    tokenizer = build_tiny_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    if eos_scale != 1.0:
        with torch.no_grad():
            model.get_input_embeddings().weight[tokenizer.eos_token_id] *= eos_scale
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
