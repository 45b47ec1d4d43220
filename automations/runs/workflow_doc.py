"""The runtime form of a published workflow version: steps indexed by id, settings with defaults.

Versions are immutable, so parsed documents are cached by version id for the life of the process.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The ``next``/target value that ends the workflow.
END = "end"


@dataclass(frozen=True)
class WorkflowDoc:
    raw: dict
    positions: dict[str, int]

    @classmethod
    def from_dict(cls, raw: dict) -> WorkflowDoc:
        return cls(raw, {s["id"]: i for i, s in enumerate(raw["steps"])})

    @property
    def name(self) -> str:
        return self.raw["name"]

    @property
    def settings(self) -> dict:
        return self.raw["settings"]

    @property
    def triggers(self) -> list[dict]:
        return self.raw["triggers"]

    @property
    def steps(self) -> list[dict]:
        return self.raw["steps"]

    def step(self, step_id: str | None) -> dict | None:
        if step_id is None or step_id not in self.positions:
            return None
        return self.steps[self.positions[step_id]]

    def first_step_id(self) -> str | None:
        return self.steps[0]["id"] if self.steps else None

    def following(self, step_id: str) -> str | None:
        """The step after ``step_id`` in document order, or None at the end."""
        pos = self.positions[step_id] + 1
        return self.steps[pos]["id"] if pos < len(self.steps) else None

    def next_after(self, step: dict) -> str | None:
        """Where a step that simply continues goes: its ``next`` override, else the following step."""
        override = step.get("next")
        if override == END:
            return None
        return override or self.following(step["id"])


_DOCS: dict[str, WorkflowDoc] = {}


def doc_for_version(version) -> WorkflowDoc:
    """The parsed document of a WorkflowVersion row, cached (versions never change)."""
    doc = _DOCS.get(version.id)
    if doc is None:
        doc = WorkflowDoc.from_dict(version.document)
        if len(_DOCS) > 10000:
            _DOCS.clear()
        _DOCS[version.id] = doc
    return doc
