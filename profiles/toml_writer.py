"""Writing layers, profiles and packages as TOML (the standard library only reads it).

Only what cabot's models hold is written: strings, integers, floats, booleans, arrays and
tables. Scalars come first, then one ``[table]`` per nested table; an array of tables is
written as an array of inline tables, one per line. What is written reads back equal
with ``tomllib``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def model_toml(model: BaseModel, *, exclude: set[str] | None = None) -> dict[str, Any]:
    """A model as plain TOML-ready data, leaving out what equals its default."""
    data: dict[str, Any] = model.model_dump(mode="json", exclude_defaults=True,
                                            exclude=exclude)
    return data


def dumps(data: Mapping[str, Any]) -> str:
    """``data`` as a TOML document."""
    lines: list[str] = []
    _table(data, (), lines)
    return "\n".join(lines).strip() + "\n"


def _table(data: Mapping[str, Any], path: tuple[str, ...], lines: list[str]) -> None:
    scalars = {k: v for k, v in data.items() if not isinstance(v, Mapping) and v is not None}
    tables = {k: v for k, v in data.items() if isinstance(v, Mapping)}
    if path and (scalars or not tables):
        lines.append("")
        lines.append("[" + ".".join(_key(part) for part in path) + "]")
    for key, value in scalars.items():
        lines.append(f"{_key(key)} = {_value(value, multiline=True)}")
    for key, value in tables.items():
        _table(value, (*path, key), lines)


def _key(key: str) -> str:
    return key if BARE_KEY.match(key) else _string(key)


def _string(text: str) -> str:
    # JSON's escapes are TOML's basic-string escapes; TOML also forbids a raw DEL.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any, *, multiline: bool = False) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        items = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()
                          if v is not None)
        return "{ " + items + " }" if items else "{}"
    if isinstance(value, Sequence):
        if multiline and any(isinstance(item, Mapping) for item in value):
            return "[\n" + "".join(f"  {_value(item)},\n" for item in value) + "]"
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")
