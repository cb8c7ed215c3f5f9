"""Placing printed labels on contract names, remembering the open subtotal and header row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from schemas.registry import Unit
from services.extract.model import Target
from services.extract.template import (
    CONTEXT_LINES,
    CONTEXTS,
    ROWS,
    ContextSpec,
    RowSpec,
    table_label,
)


@dataclass(frozen=True)
class Placement:
    target: Target
    unit: Unit
    sign: int = 1
    label: str = ""


@dataclass
class Placer:
    """Reads labels in document order; a subtotal opens a parent for the lines that follow."""

    rows: Sequence[RowSpec] = ROWS
    parent: str | None = None
    context: ContextSpec | None = field(default=None)

    def table_row(self, label: str) -> Placement | None:
        """The name of a table row, or None for a header row or an unknown label."""
        text = table_label(label)
        spec = next((s for s in self.rows if self._is_table_match(s, text)), None)
        if spec is not None:
            self._enter(spec)
            return Placement(spec.target, spec.unit, spec.table_sign, label)
        return self._context_row(text, label)

    def prose(self, clause: str) -> Placement | None:
        """The subject named in a prose clause: the earliest, then longest, known phrase."""
        found = [
            (match.start(), -len(match.group()), index, match.group())
            for index, spec in enumerate(self.rows)
            if spec.prose is not None and self._is_open(spec)
            if (match := spec.prose.search(clause)) is not None
        ]
        if not found:
            return None
        _, _, index, text = min(found)
        spec = self.rows[index]
        self._enter(spec)
        return Placement(spec.target, spec.unit, 1, text.strip())

    def _is_table_match(self, spec: RowSpec, text: str) -> bool:
        return (
            spec.table is not None
            and self._is_open(spec)
            and spec.table.fullmatch(text) is not None
        )

    def _is_open(self, spec: RowSpec) -> bool:
        return spec.target.parent is None or spec.target.parent == self.parent

    def _enter(self, spec: RowSpec) -> None:
        self.context = None
        if spec.opens:
            self.parent = spec.target.name
        elif spec.target.parent is None:
            self.parent = None

    def _context_row(self, text: str, label: str) -> Placement | None:
        if self.context is not None and CONTEXT_LINES.fullmatch(text):
            name = f"{self.context.prefix}_{text}"
            return Placement(Target(self.context.kind, name), self.context.unit, 1, label)
        self.context = next((c for c in CONTEXTS if c.pattern.fullmatch(text)), None)
        return None
