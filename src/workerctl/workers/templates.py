"""Worker templates: named starting points that fill a new worker's fields."""

from __future__ import annotations

from dataclasses import dataclass, field

from workerctl.workers.contract import OutputContract


@dataclass(frozen=True)
class Template:
    key: str
    title: str
    description: str
    instructions: str
    context_sources: list[str] = field(default_factory=list)
    tool_categories: list[str] = field(default_factory=list)
    output_mode: str = "task_comment"
    max_iterations: int = 5
    review_required: bool | None = None
    # what the output must contain; a plain mapping ({sections, names_record, max_length,
    # max_lines}) is accepted too, so a plugin needs no import for it
    output_contract: OutputContract | None = None

    def __post_init__(self) -> None:
        if isinstance(self.output_contract, dict):
            object.__setattr__(self, "output_contract", OutputContract.from_dict(self.output_contract))

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "title": self.title,
            "description": self.description,
            "instructions": self.instructions,
            "context_sources": list(self.context_sources),
            "tool_categories": list(self.tool_categories),
            "output_mode": self.output_mode,
            "max_iterations": self.max_iterations,
            "review_required": self.review_required,
            "output_contract": self.output_contract.to_dict() if self.output_contract else None,
        }
