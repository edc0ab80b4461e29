"""Choosing and loading an evaluation backend: Hugging Face or vLLM, text or vision-language.

Its own module so that the text backends (`sampling`) and the image-aware ones (`vision`, which
subclass them) stay one-way: this module is the only one that knows both.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from hicra.errors import HicraError
from hicra.eval.sampling import Backend, HFBackend, VLLMBackend, cuda_available

BACKENDS = ("auto", "hf", "vllm")


def choose_backend(name: str) -> str:
    """ "hf" or "vllm": auto picks vLLM when it is installed and a GPU is present."""
    if name not in BACKENDS:
        raise HicraError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    has_vllm = importlib.util.find_spec("vllm") is not None
    if name == "vllm":
        if not has_vllm:
            raise HicraError("--backend vllm needs vLLM: pip install 'hicra[vllm]'")
        if not cuda_available():
            raise HicraError("--backend vllm needs a CUDA GPU; use --backend hf on this machine")
        return "vllm"
    if name == "auto" and has_vllm and cuda_available():
        return "vllm"
    return "hf"


def make_backend(
    name: str,
    model_path: str,
    tokenizer: Any,
    *,
    batch_size: int | None = None,
    dtype: str = "auto",
    seed: int = 0,
) -> Backend:
    """The chosen backend with its model loaded (`name` as returned by `choose_backend`); a
    vision-language model gets the image-aware backends of `eval.vision`."""
    from hicra.models import is_vision_model

    if is_vision_model(model_path):
        from hicra.eval.vision import make_vision_backend

        return make_vision_backend(name, model_path, batch_size=batch_size, dtype=dtype, seed=seed)
    if name == "vllm":
        return VLLMBackend(model_path, dtype=dtype, seed=seed)
    return HFBackend.from_path(model_path, tokenizer, batch_size=batch_size, dtype=dtype)
