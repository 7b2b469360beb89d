"""The answers a review needs from a person: the two items only a person can judge,
the verdict and a note.

Given as options, or asked for on a terminal through an ``Asker`` (the CLI passes one
that prompts only when the terminal allows it: ``terminal.Terminal.can_prompt``);
without a terminal, whatever is missing is a usage error naming the options to give.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

VERDICTS = ("approved", "needs_changes", "rejected")


class Asker(Protocol):
    """How a question reaches a person (the CLI's is click's prompts)."""

    def confirm(self, question: str) -> bool: ...

    def choose(self, question: str, choices: Sequence[str]) -> str: ...

    def text(self, question: str) -> str: ...


@dataclass(frozen=True)
class ReviewAnswers:
    verdict: str | None = None
    matches_instructions: str | None = None  # "yes" | "no"
    next_action_clear: str | None = None  # "yes" | "no"
    note: str | None = None

    @property
    def nothing_given(self) -> bool:
        return self.verdict is None and self.matches_instructions is None and self.next_action_clear is None

    @property
    def human(self) -> dict[str, str | None]:
        """The person's items by key (``runs.review.HUMAN_ITEMS``)."""
        return {
            "matches_instructions": self.matches_instructions,
            "next_action_clear": self.next_action_clear,
        }


def complete(given: ReviewAnswers, human_items: dict[str, str], ask: Asker | None) -> ReviewAnswers:
    """``given`` with what is missing asked for (``ask``), or a ``UsageError`` naming
    the options to give when nobody can be asked."""
    answers = given
    if ask is not None:
        for key, title in human_items.items():
            if getattr(answers, key) is None:
                answers = replace(answers, **{key: "yes" if ask.confirm(title + "?") else "no"})
        if answers.verdict is None:
            answers = replace(answers, verdict=ask.choose("Verdict", VERDICTS))
            if answers.note is None:
                answers = replace(answers, note=ask.text("Note (optional)"))
    missing = [f"--{key.replace('_', '-')}" for key, value in answers.human.items() if value is None]
    if answers.verdict is None:
        missing.insert(0, "--verdict")
    if missing:
        from workerctl.errors import UsageError

        raise UsageError(
            f"not on a terminal: give {', '.join(missing)}", hint="or add --check to only see the checklist"
        )
    return answers
