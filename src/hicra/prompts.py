"""The prompt text shared by training and evaluation, so both ask the model the same way.

That includes the vision-language layout (`vision_messages`): `hicra train` and `hicra eval` build
image prompts with this one function, so an evaluated model is asked as it was trained.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hicra.errors import HicraError

# The one instruction shared by evaluation prompts and training prompts.
BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


def user_prompt(question: str, instruction: str = BOXED_INSTRUCTION) -> str:
    """The user turn for a question: the question, a blank line, then the instruction (if any)."""
    return f"{question.strip()}\n\n{instruction}" if instruction else question.strip()


def vision_messages(messages: list[dict[str, str]], images: int) -> list[dict[str, Any]]:
    """Chat messages as content blocks, the images at the start of the last user turn."""
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    out = []
    for i, message in enumerate(messages):
        blocks: list[dict[str, Any]] = [{"type": "image"}] * images if i == last_user else []
        blocks.append({"type": "text", "text": message["content"]})
        out.append({"role": message["role"], "content": blocks})
    return out


@dataclass(frozen=True)
class PromptStyle:
    """How a question becomes chat messages: optional system prompt, few-shot turns, instruction.

    `hicra train` builds its prompts with it, and `hicra eval --prompt-of RUN` asks a trained
    model exactly as it was trained.
    """

    system_prompt: str | None = None
    instruction: str = BOXED_INSTRUCTION
    few_shot: Sequence[tuple[str, str]] = field(default_factory=tuple)

    def messages(self, question: str) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        for user, assistant in self.few_shot:
            messages += [
                {"role": "user", "content": self._user(user)},
                {"role": "assistant", "content": assistant},
            ]
        return [*messages, {"role": "user", "content": self._user(question)}]

    def vision_messages(self, question: str, images: int) -> list[dict[str, Any]]:
        """`messages` as content blocks, with one image block per image in the question's turn."""
        return vision_messages(self.messages(question), images)

    def _user(self, question: str) -> str:
        return user_prompt(question, self.instruction)

    @classmethod
    def from_fields(
        cls,
        system_prompt: str | None = None,
        instruction: str | None = BOXED_INSTRUCTION,
        few_shot: Any = None,
    ) -> PromptStyle:
        """From config values: `few_shot` is a list of [question, answer] pairs or its JSON text."""
        if isinstance(few_shot, str):
            try:
                few_shot = json.loads(few_shot) if few_shot.strip() else None
            except json.JSONDecodeError as err:
                raise HicraError(
                    f"few_shot must be JSON ({err.msg} at column {err.colno}): {few_shot!r}"
                ) from None
        few_shot = few_shot or []
        if not isinstance(few_shot, list) or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(x, str) for x in p)
            for p in few_shot
        ):
            raise HicraError("few_shot must be a list of [question, answer] string pairs")
        instruction = BOXED_INSTRUCTION if instruction is None else instruction
        return cls(system_prompt or None, instruction, tuple(tuple(p) for p in few_shot))

    @classmethod
    def of_run(cls, config: Mapping[str, Any]) -> PromptStyle:
        """The prompt style recorded in a run's config.yaml."""
        return cls.from_fields(
            config.get("system_prompt"), config.get("instruction"), config.get("few_shot")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "system_prompt": self.system_prompt,
            "instruction": self.instruction,
            "few_shot": [list(p) for p in self.few_shot] or None,
        }
