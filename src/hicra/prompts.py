"""The prompt text shared by training and evaluation, so both ask the model the same way."""

from __future__ import annotations

# The one instruction shared by evaluation prompts and training prompts.
BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


def user_prompt(question: str, instruction: str = BOXED_INSTRUCTION) -> str:
    """The user turn for a question: the question, a blank line, then the instruction (if any)."""
    return f"{question.strip()}\n\n{instruction}" if instruction else question.strip()
