"""Which field of a logged row holds what: shared by `hicra mine` and `hicra report`.

Both read other tools' rollout logs and trace files (TRL's logged completions, OpenRLHF dumps,
dataset solutions) and must pick the same fields, so the candidate names and the text of a
field value live here, below both wings.
"""

from __future__ import annotations

from typing import Any

from hicra.run_folder import RolloutField

# Tried in this order when --field is not given: a rollout's completion before its gold `answer`,
# a dataset's `solution` before its `answer` (MATH has both in some copies; GSM8K only `answer`).
TEXT_FIELDS = (RolloutField.COMPLETION, "response", "output", "text", "solution", "answer")
# An explicit outcome beats a numeric reward: rollouts carry both.
REWARD_FIELDS = (RolloutField.CORRECT, RolloutField.REWARD)
# The problem statement of a trace: a dataset's `problem`/`question`, a run's `prompt`.
PROBLEM_FIELDS = ("problem", "question", RolloutField.PROMPT, "query", "instruction")


def trace_text(value: Any) -> str | None:
    """The text of a field value: a string, or the contents of a chat-message list; else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
        parts = [m.get("content") for m in value]
        if all(isinstance(p, str) for p in parts):
            return "\n".join(parts)
    return None
