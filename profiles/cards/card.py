"""Character cards read: a PNG's card chunk or a JSON file, as V1, V2 or V3 fields
(``profiles.cards`` describes the formats)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from profiles.cards.png import PNG_SIGNATURE, png_text_chunks
from profiles.errors import PackageError

CARD_KEYWORDS = ("ccv3", "chara")
"""Text-chunk keywords that carry a card, the preferred one first."""
MAX_CARD_BYTES = 20 << 20

CardSpec = Literal["chara_card_v1", "chara_card_v2", "chara_card_v3"]


class _Lenient(BaseModel):
    # Cards in the wild carry many fields of their own; only these are read.
    model_config = ConfigDict(extra="ignore", frozen=True)


class BookEntry(_Lenient):
    """One character-book entry, as V2 and V3 write it."""

    keys: list[str] = Field(default_factory=list)
    content: str = ""
    enabled: bool = True
    insertion_order: int = 100
    case_sensitive: bool | None = None
    use_regex: bool = False
    constant: bool | None = None
    name: str | None = None
    comment: str | None = None
    priority: int | None = None
    selective: bool | None = None
    secondary_keys: list[str] = Field(default_factory=list)
    position: str | None = None


class CharacterBook(_Lenient):
    """A card's lorebook."""

    name: str | None = None
    scan_depth: int | None = None
    token_budget: int | None = None
    entries: list[BookEntry] = Field(default_factory=list)


class CardData(_Lenient):
    """The fields of a card cabot uses (V2 and V3 share them)."""

    name: str = Field(min_length=1)
    description: str = ""
    personality: str = ""
    scenario: str = ""
    first_mes: str = ""
    mes_example: str = ""
    creator_notes: str = ""
    system_prompt: str = ""
    post_history_instructions: str = ""
    alternate_greetings: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    creator: str = ""
    character_version: str = ""
    character_book: CharacterBook | None = None


@dataclass(frozen=True)
class Card:
    """A card as read: its spec, its fields, and where it came from."""

    spec: CardSpec
    data: CardData
    container: str
    """``JSON`` or ``PNG (ccv3 chunk)``."""



def read_card(data: bytes, source: str) -> Card:
    """A card from a PNG's text chunk or a JSON file's bytes.

    Raises:
        PackageError: not a card, a PNG without a card chunk, a damaged chunk, or a card
            without a name.
    """
    if len(data) > MAX_CARD_BYTES:
        raise PackageError(f"{source}: {len(data) >> 20} MB is too large for a card")
    if data.startswith(PNG_SIGNATURE):
        keyword, raw = _card_chunk(data, source)
        try:
            text = base64.b64decode(b"".join(raw.split()), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise PackageError(f"{source}: the {keyword!r} chunk is not base64 JSON") from None
        return _parse_json(text, source, f"PNG ({keyword} chunk)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PackageError(f"{source}: neither a PNG nor UTF-8 JSON; is it a card?") from None
    return _parse_json(text, source, "JSON")


def _card_chunk(data: bytes, source: str) -> tuple[str, bytes]:
    found: dict[str, bytes] = {}
    for keyword, text in png_text_chunks(data, source):
        if keyword.lower() in CARD_KEYWORDS:
            found.setdefault(keyword.lower(), text)
    for keyword in CARD_KEYWORDS:
        if keyword in found:
            return keyword, found[keyword]
    raise PackageError(f"{source}: this PNG carries no character card (no 'chara' or "
                       "'ccv3' text chunk); export the card from SillyTavern again")


def _parse_json(text: str, source: str, container: str) -> Card:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise PackageError(f"{source}: not valid JSON ({error})") from None
    if not isinstance(raw, dict):
        raise PackageError(f"{source}: a card is a JSON object")
    spec: CardSpec
    if raw.get("spec") in ("chara_card_v2", "chara_card_v3"):
        spec = raw["spec"]
        body = raw.get("data")
        if not isinstance(body, dict):
            raise PackageError(f"{source}: a {spec} card keeps its fields in 'data'")
    elif raw.get("spec") is None and "name" in raw:
        spec, body = "chara_card_v1", raw
    else:
        raise PackageError(f"{source}: not a character card (spec {raw.get('spec')!r}; cabot reads "
                           "chara_card_v2 and chara_card_v3)")
    try:
        data = CardData.model_validate(body)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}"
                             for item in error.errors())
        raise PackageError(f"{source}: the card's fields are not usable ({problems})") from None
    return Card(spec, data, container)


def card_from_json(value: dict[str, Any], source: str = "card") -> Card:
    """A card from already-parsed JSON (for tests and tools)."""
    return _parse_json(json.dumps(value), source, "JSON")
