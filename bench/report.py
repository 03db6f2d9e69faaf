"""The table: printed for people, written as JSON for tools and as Markdown for the docs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bench.common import Machine, Row

HEADERS = ("#", "Benchmark", "Ours", "Baseline", "Ratio", "Target", "Met")


def number(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "MiB":
        return f"{value:.0f} MiB"
    if unit == "violations":
        return f"{value:.0f}"
    return f"{value:,.1f} {unit}"


def cells(row: Row) -> tuple[str, ...]:
    ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
    if row.unit == "s" and row.ratio is not None:
        ratio = f"{row.ratio:.0%}"
    met = "-" if row.met is None else ("yes" if row.met else "NO")
    return (
        str(row.number), row.title, number(row.ours, row.unit),
        f"{number(row.baseline, row.unit)} ({row.baseline_label})", ratio, row.target, met,
    )


def columns(header: Sequence[str], lines: Iterable[Sequence[str]]) -> str:
    """Aligned plain-text columns under ``header`` and a rule, for the terminal."""
    table = [header, *lines]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    out = []
    for index, line in enumerate(table):
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def text_table(rows: list[Row]) -> str:
    """A plain-text table for the terminal."""
    return columns(HEADERS, (cells(row) for row in rows))


def markdown_table(rows: list[Row]) -> str:
    """The same table in Markdown."""
    out = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in cells(row)) + " |"
            for row in rows]
    return "\n".join(out)


def write_json(path: Path, machine: Machine, rows: list[Row], extra: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"machine": machine.__dict__, **extra, "rows": [row.as_dict() for row in rows]}
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
