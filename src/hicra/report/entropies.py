"""Per-token entropies of logged completions, by a teacher-forced forward pass (`--model`).

A dump of another trainer rarely holds the policy's per-token entropies, yet planning vs execution
token entropy is the paper's central figure. Given a model (the run's, or any checkpoint of it),
each completion is fed after its logged prompt and the entropy of the model's next-token
distribution is read at every completion token: the entropy the model had when it produced that
token, as training would measure it (up to what the log dropped: verl decodes prompts without
special tokens, so the chat template's markers are missing from the context).

Rows are sorted by length and batched (right padding), on CUDA when available, with a progress
bar; entropies are computed in float32 from the logits (`torch.distributions.Categorical`).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from hicra.errors import HicraError


class TokenEntropies:
    """Computes per-token entropies of completions (token ids) after their prompts."""

    def __init__(
        self, model: str, batch_size: int = 8, device: str | None = None, total: int | None = None
    ) -> None:
        import torch
        from tqdm.auto import tqdm

        from hicra.models import load_model, load_tokenizer, torch_dtype

        if batch_size < 1:
            raise HicraError(f"--batch-size must be at least 1, got {batch_size}")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise HicraError(f"--device {self.device}: no CUDA device is available here")
        self.batch_size = batch_size
        self.tokenizer = load_tokenizer(model)
        self.model = load_model(model, dtype=torch_dtype("auto", self.device.split(":")[0]))
        self.model.to(self.device).eval()
        config = getattr(self.model.config, "text_config", None) or self.model.config
        self.context = getattr(config, "max_position_embeddings", None)
        self.too_long = 0  # completions longer than the model's context: no entropies
        self.progress = tqdm(
            total=total, desc="token entropies", unit="rollout", file=sys.stderr, disable=None
        )

    def close(self) -> None:
        self.progress.close()

    def prompt_ids(self, prompt: Any) -> list[int]:
        """The prompt's tokens: a chat (list of messages) in the model's template, text as is."""
        tok = self.tokenizer
        if isinstance(prompt, list) and prompt and all(isinstance(m, dict) for m in prompt):
            if getattr(tok, "chat_template", None):
                ids = tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)
                return list(ids["input_ids"] if isinstance(ids, dict) else ids)
            prompt = "\n".join(str(m.get("content", "")) for m in prompt)
        text = prompt if isinstance(prompt, str) else ""
        ids = tok(text, add_special_tokens=False)["input_ids"] if text else []
        if not ids:  # the first completion token needs a context: the begin (or end) token
            start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
            ids = [start] if start is not None else []
        return list(ids)

    def __call__(self, prompts: list[Any], completions: list[list[int]]) -> list[Any]:
        """Entropies (nats, one per completion token) of each row; None for a row that cannot be
        fed (longer than the model's context, or without any context token)."""
        out: list[Any] = [None] * len(completions)
        rows = []
        for i, (prompt, ids) in enumerate(zip(prompts, completions, strict=True)):
            context = self.prompt_ids(prompt)
            if self.context is not None and len(ids) >= self.context:
                self.too_long += 1
                continue
            if self.context is not None:  # keep the prompt's end when the pair is too long
                context = context[max(0, len(context) + len(ids) - self.context) :]
            if not context or not ids:
                out[i] = np.zeros(0, dtype=np.float32) if context else None
                continue
            rows.append((i, context, list(ids)))
        rows.sort(key=lambda r: len(r[1]) + len(r[2]))
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            for (i, _, _), values in zip(batch, self._forward(batch), strict=True):
                out[i] = values
        self.progress.update(len(completions))
        return out

    def _forward(self, batch: list[tuple[int, list[int], list[int]]]) -> list[np.ndarray]:
        import torch

        width = max(len(c) + len(ids) for _, c, ids in batch)
        pad = self.tokenizer.pad_token_id or 0
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for b, (_, context, ids) in enumerate(batch):
            row = context + ids
            input_ids[b, : len(row)] = torch.tensor(row)
            attention[b, : len(row)] = 1
        with torch.inference_mode():
            logits = self.model(
                input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device)
            ).logits
            out = []
            for b, (_, context, ids) in enumerate(batch):
                # the distribution that produced completion token t sits at position t - 1
                rows = logits[b, len(context) - 1 : len(context) + len(ids) - 1].float()
                entropy = torch.distributions.Categorical(logits=rows).entropy()
                out.append(entropy.cpu().numpy())
        return out
