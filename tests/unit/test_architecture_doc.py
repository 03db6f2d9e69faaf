"""docs/architecture.md names only files and names that exist, so the map cannot rot."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "architecture.md"
PATH = re.compile(r"[\w.-]+(?:/[\w.-]+)+\.py\b")
"""``path/like/this.py``: at least one folder, so ``discord.py`` the library is no path."""
NAME = re.compile(r"`([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)`")
"""A backticked ``Name`` or ``Class.member``."""


def mentioned_paths() -> list[str]:
    return sorted(set(PATH.findall(DOC.read_text())))


def table_rows() -> list[tuple[str, str]]:
    """(file, names cell) of every table row that names exactly one file, in its 3rd cell."""
    rows = []
    for line in DOC.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 4 and len(PATH.findall(cells[2])) == 1:
            rows.append((PATH.findall(cells[2])[0], cells[3]))
    return rows


@cache
def defined_in(path: str) -> frozenset[str]:
    """Top-level names of a module, and ``Class.member`` for what its classes define."""
    names: set[str] = set()
    if not (ROOT / path).is_file():
        return frozenset(names)
    for node in ast.parse((ROOT / path).read_text()).body:
        for name in _bound(node):
            names.add(name)
        if isinstance(node, ast.ClassDef):
            for inner in ast.walk(node):
                for member in _bound(inner):
                    names.add(f"{node.name}.{member}")
                if isinstance(inner, ast.Attribute) and isinstance(inner.ctx, ast.Store) and (
                        isinstance(inner.value, ast.Name) and inner.value.id == "self"):
                    names.add(f"{node.name}.{inner.attr}")
    return frozenset(names)


def _bound(node: ast.AST) -> list[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    return []


def test_every_file_mentioned_exists() -> None:
    paths = mentioned_paths()
    assert len(paths) > 40  # the pattern still finds the map's files
    assert [path for path in paths if not (ROOT / path).is_file()] == []


def test_every_name_in_a_row_is_defined_in_its_file() -> None:
    rows = table_rows()
    assert len(rows) > 40  # the rows are still read as tables
    missing = [f"{path}: {name}" for path, names in rows for name in NAME.findall(names)
               if name not in defined_in(path)]
    assert missing == []
