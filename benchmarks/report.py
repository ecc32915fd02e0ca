"""Figures of one run: latency percentiles, rates, errors; a printed table and JSON."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (nan when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(0, math.ceil(fraction * len(sorted_values)) - 1)
    return sorted_values[min(rank, len(sorted_values) - 1)]


def latency_summary(values_ms: list[float]) -> dict[str, float]:
    ordered = sorted(values_ms)
    return {
        "count": len(ordered),
        "p50_ms": percentile(ordered, 0.50),
        "p95_ms": percentile(ordered, 0.95),
        "p99_ms": percentile(ordered, 0.99),
        "max_ms": ordered[-1] if ordered else math.nan,
    }


@dataclass
class Report:
    """One scenario's result. ``figures`` is flat and JSON-able; ``notes`` explain limits."""

    scenario: str
    target: str
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, **figures: Any) -> None:
        self.figures.update(figures)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "target": self.target,
            "figures": self.figures,
            "notes": self.notes,
        }

    def table(self) -> str:
        rows = [(key, _format(value)) for key, value in self.figures.items()]
        width = max((len(k) for k, _ in rows), default=10)
        lines = [f"== {self.scenario} against {self.target} =="]
        lines += [f"  {key.ljust(width)}  {value}" for key, value in rows]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def _format(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        return json.dumps(value) if value else "{}"
    return str(value)


def comparison_table(tidings: list[Report], peer: list[Report]) -> str:
    """Tidings / peer for every numeric figure the two runs share."""
    lines = []
    for ours, theirs in zip(tidings, peer, strict=False):
        lines.append(f"== {ours.scenario}: {ours.target} / {theirs.target} ==")
        for key, value in ours.figures.items():
            other = theirs.figures.get(key)
            if (
                isinstance(value, (int, float))
                and isinstance(other, (int, float))
                and not isinstance(value, bool)
            ):
                ratio = value / other if other else math.nan
                lines.append(
                    f"  {key:<28} {_format(value):>14} {_format(other):>14}   x{_format(ratio)}"
                )
    return "\n".join(lines)


def write_json(path: str, reports: list[Report], extra: dict[str, Any] | None = None) -> None:
    document = {"reports": [r.to_json() for r in reports], **(extra or {})}
    with open(path, "w", encoding="utf-8") as out:
        json.dump(document, out, indent=2, default=str, allow_nan=True)
