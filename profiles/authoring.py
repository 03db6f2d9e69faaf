"""Layers written by people in chat: parsed from their TOML, and shown back as TOML.

`layer_from_toml` validates what a moderator sends with ``/layer create`` exactly as a
layer file is validated (`profiles.library.parse_layer`: each bad field named with what
is allowed), and makes sure the layer is called what the command says. `layer_to_toml`
writes any layer (a built-in one too) as TOML that reads back to the same layer, for
``/layer show`` and as a start for a layer of one's own. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

from profiles.errors import LayerFileError
from profiles.library import parse_layer
from profiles.models import NAME_PATTERN, Layer

MAX_SOURCE_CHARS = 20_000
"""The longest layer source accepted from chat."""
_FENCE = re.compile(r"```([^\n`]*)\n(.*?)```", re.DOTALL)
_INLINE_FENCE = re.compile(r"```(.*?)```", re.DOTALL)


def toml_in(text: str) -> str:
    """The TOML in a command's text: the first code block, else the text itself."""
    fenced = _FENCE.search(text)
    if fenced is not None:
        language = fenced.group(1).strip()
        body = fenced.group(2)
        # ```name = "x"``` on its first line has no language, just TOML.
        return body if not language or language.isalpha() else f"{language}\n{body}"
    inline = _INLINE_FENCE.search(text)
    if inline is not None:
        return inline.group(1)
    return text


def layer_from_toml(text: str, name: str) -> tuple[Layer, str]:
    """The layer ``name`` defined by TOML ``text``, and the source to store for it.

    A source without a ``name`` gets one (the stored source starts with it); a source
    naming another layer is refused, so the name the command gave is the layer's name.

    Raises:
        LayerFileError: not valid TOML, a bad or missing field, or another name; the
            message names the field and what is allowed.
    """
    where = f"layer {name!r}"
    if len(text) > MAX_SOURCE_CHARS:
        raise LayerFileError(f"{where}: the TOML is {len(text):,} characters long; a layer "
                             f"may have at most {MAX_SOURCE_CHARS:,}.")
    if not text.strip():
        raise LayerFileError(
            f"{where}: no TOML was given. Put the layer in a code block after the command, "
            "or attach a .toml file; /layer show base shows one to start from."
        )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise LayerFileError(f"{where}: not valid TOML ({error}); fix the syntax") from None
    given = data.get("name")
    source = text
    if given is None:
        source = f"name = {_string(name)}\n{text.lstrip(chr(0xFEFF))}"
    elif given != name:
        raise LayerFileError(
            f"{where}: field 'name': the TOML calls the layer {given!r}, but the command "
            f"names it {name!r}; make them the same (or leave 'name' out)."
        )
    return parse_layer(source, where), source


def valid_name(name: str) -> bool:
    """Whether ``name`` is a valid layer or profile name."""
    return re.match(NAME_PATTERN, name) is not None


def layer_to_toml(layer: Layer) -> str:
    """``layer`` as TOML that `profiles.library.parse_layer` reads back to the same layer.

    Only what differs from the defaults is written: top-level values, then a ``[table]``
    per nested model (``[sampling]``, ``[rules]`` ...), lists of rules as inline tables.
    """
    lines: list[str] = []
    _write_table(layer.model_dump(mode="json", exclude_defaults=True), [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _write_table(data: dict[str, Any], path: list[str], lines: list[str]) -> None:
    tables = {key: value for key, value in data.items() if isinstance(value, dict)}
    for key, value in data.items():
        if key not in tables:
            lines.append(f"{_key(key)} = {_top_value(value)}")
    for key, value in tables.items():
        lines += ["", "[" + ".".join(_key(part) for part in [*path, key]) + "]"]
        _write_table(value, [*path, key], lines)


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _string(key)


def _top_value(value: Any) -> str:
    """A value at ``key = ``: long texts as multi-line strings, lists one item a line."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, list) and any(isinstance(item, dict) for item in value):
        return "[\n" + "".join(f"  {_value(item)},\n" for item in value) + "]"
    return _value(value)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _pattern(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(key)} = {_value(item)}"
                                for key, item in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _string(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's, but DEL must be escaped too)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _literal_ok(text: str) -> bool:
    return "'" not in text and not any(ord(c) < 32 or ord(c) == 127 for c in text if c != "\t")


def _pattern(text: str) -> str:
    """A string; with backslashes (a regular expression) a literal one when it can be."""
    return f"'{text}'" if "\\" in text and _literal_ok(text) else _string(text)


def _text(text: str) -> str:
    """A prompt or grammar: a multi-line literal string when it has lines and can be."""
    controls = any((ord(c) < 32 and c not in "\t\n") or ord(c) == 127 for c in text)
    if "\n" in text and "'''" not in text and not text.endswith("'") and not controls:
        # TOML drops a newline right after the opening quotes.
        return f"'''\n{text}'''"
    return _string(text)
