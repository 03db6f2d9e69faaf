"""SillyTavern character cards (V1, V2 and V3; JSON or PNG) as persona layers.

A card is JSON: Character Card V2 (``spec = "chara_card_v2"``) and V3
(``"chara_card_v3"``) keep their fields in ``data``; the old V1 has them at the top level.
A PNG card carries that JSON, base64-encoded, in a ``tEXt`` chunk (also read: ``iTXt``
and ``zTXt``) with the keyword ``ccv3`` (V3, preferred) or ``chara``. The PNG is read
with the standard library (``struct`` and ``zlib``, each chunk's CRC checked): a card
needs its text chunks and nothing else of the image, so no imaging library is needed.

The layer a card becomes:

* ``prompt``: the card's system prompt, then its description, personality, scenario and
  example dialogue, in SillyTavern's order; ``{{char}}`` is the card's name and
  ``{{user}}`` "the user";
* ``post_history``: the card's post-history instructions (placed after the
  conversation, just before the model answers);
* ``lorebook``: the card's character book, enabled entries only.

Nothing else: a card has no hard rules and cannot declare conflicts or a grammar, so it
can never remove the hard rules of the stack it joins (they are enforced outside the
model, whatever its prompt says). A card's text is a stranger's: lines that try to
override the stack (instructions to ignore the rules, fake system turns, control-token
spellings) are left out of the layer and listed in the import report.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
import unicodedata
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from profiles.errors import PackageError
from profiles.lore import Lorebook, LoreEntry
from profiles.models import Layer

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CARD_KEYWORDS = ("ccv3", "chara")
"""Text-chunk keywords that carry a card, the preferred one first."""
MAX_CARD_BYTES = 20 << 20
MAX_PROMPT_CHARS = 12_000
"""A layer prompt longer than this is cut (a huge card would fill the context window)."""
DEFAULT_LORE_BUDGET = 256
MAX_LORE_BUDGET = 1024

CardSpec = Literal["chara_card_v1", "chara_card_v2", "chara_card_v3"]
FindingKind = Literal["override", "fake turn", "control token"]


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


@dataclass(frozen=True)
class Finding:
    """A line of a card's text that tries to override the stack; it is left out."""

    field: str
    kind: FindingKind
    text: str

    def describe(self) -> str:
        excerpt = self.text if len(self.text) <= 80 else self.text[:79] + "…"
        return f"{self.field}: {self.kind}: {excerpt!r}"


@dataclass(frozen=True)
class CardImport:
    """The layer a card became, and the report a moderator reads before using it."""

    card: Card
    layer: Layer
    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def report(self) -> str:
        """What was imported, what was flagged and left out, and what was not used."""
        data = self.card.data
        lore = self.layer.lorebook
        lines = [
            f"Character card {data.name!r} ({self.card.spec}, {self.card.container}) → "
            f"layer {self.layer.name!r}.",
            f"Prompt: {len(self.layer.prompt)} characters"
            + (f"; post-history instructions: {len(self.layer.post_history)} characters"
               if self.layer.post_history else "")
            + (f"; lorebook: {len(lore.entries)} entries within {lore.token_budget} tokens"
               if lore else "") + ".",
        ]
        if self.findings:
            lines.append(f"⚠️ {len(self.findings)} line(s) try to override the stack and were "
                         "left out of the layer:")
            lines.extend(f"  - {finding.describe()}" for finding in self.findings)
        else:
            lines.append("No attempt to override the stack was found.")
        lines.append("A card adds no hard rules and removes none: the stack's rules still "
                     "hold.")
        lines.extend(f"Note: {note}" for note in self.notes)
        return "\n".join(lines)


# -- reading -------------------------------------------------------------------------


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


def png_text_chunks(data: bytes, source: str) -> Iterator[tuple[str, bytes]]:
    """Each text chunk's (keyword, text bytes) of a PNG, CRCs checked.

    Raises:
        PackageError: the PNG is cut short or a chunk is damaged.
    """
    if not data.startswith(PNG_SIGNATURE):
        raise PackageError(f"{source}: not a PNG file")
    at = len(PNG_SIGNATURE)
    while at + 12 <= len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        kind = data[at + 4:at + 8]
        body = data[at + 8:at + 8 + length]
        crc_at = at + 8 + length
        if len(body) < length or crc_at + 4 > len(data):
            raise PackageError(f"{source}: the PNG is cut short (in a {kind!r} chunk)")
        (crc,) = struct.unpack(">I", data[crc_at:crc_at + 4])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise PackageError(f"{source}: the PNG's {kind.decode('latin-1')} chunk is "
                               "damaged (bad CRC)")
        text = _chunk_text(kind, body)
        if text is not None:
            yield text
        if kind == b"IEND":
            return
        at = crc_at + 4


def _chunk_text(kind: bytes, body: bytes) -> tuple[str, bytes] | None:
    try:
        if kind == b"tEXt":
            keyword, _, text = body.partition(b"\0")
            return keyword.decode("latin-1"), text
        if kind == b"zTXt":
            keyword, _, rest = body.partition(b"\0")
            return keyword.decode("latin-1"), zlib.decompress(rest[1:])
        if kind == b"iTXt":
            keyword, _, rest = body.partition(b"\0")
            compressed, rest = rest[0], rest[2:]
            _language, _, rest = rest.partition(b"\0")
            _translated, _, text = rest.partition(b"\0")
            return keyword.decode("latin-1"), zlib.decompress(text) if compressed else text
    except (zlib.error, IndexError):
        return None
    return None


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


# -- flagging ------------------------------------------------------------------------

_OVERRIDE = [re.compile(p, re.IGNORECASE | re.DOTALL) for p in (
    r"\b(?:ignore|disregard|forget|override|bypass|skip)\b[^.\n]{0,40}?\b(?:previous|prior|"
    r"above|earlier|preceding|all|any|every|your|the|system|other)\b[^.\n]{0,40}?\b"
    r"(?:instructions?|rules?|prompts?|guidelines?|restrictions?|filters?|polic(?:y|ies)|"
    r"programming|directives?|layers?)\b",
    r"\b(?:rules?|restrictions?|filters?|guidelines?|polic(?:y|ies)|limits?)\b[^.\n]{0,20}"
    r"\b(?:do(?:es)? not|don't|doesn't|no longer|never) apply\b",
    r"\byou (?:are|have) (?:now )?(?:no|free of|free from|without) (?:any )?(?:rules|"
    r"restrictions|filters|limits|guidelines|boundaries|censorship)\b",
    r"\byou are (?:now )?(?:unrestricted|uncensored|unfiltered|jailbroken)\b",
    r"\b(?:never|must not|do not|don't|cannot) refuse\b",
    r"\b(?:jailbreak|developer mode|dan mode|do anything now)\b",
    r"\bnew (?:system )?(?:instructions|rules|prompt)\s*:",
)]
_FAKE_TURN = re.compile(
    r"^\s*(?:#{1,6}\s*|\[|<|\(|\*\*)?\s*(?:system|sys|developer|admin|operator)"
    r"\s*(?:prompt|message|note|instruction)?\s*(?:\]|>|\)|\*\*)?\s*[:>\]]",
    re.IGNORECASE,
)
_CONTROL = re.compile(
    r"<\|[a-z_]{2,30}\|>|</?s>|\[/?INST\]|<<\s*/?SYS\s*>>|</?(?:start|end)_of_turn>|"
    r"<(?:bos|eos|pad|unk)>|<\|?(?:im_start|im_end|endoftext|eot_id)\|?>",
    re.IGNORECASE,
)
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)


def _read_as_written(line: str) -> str:
    """``line`` as a reader sees it: compatibility forms folded, invisible marks dropped."""
    return unicodedata.normalize("NFKC", line).translate(_INVISIBLE)


def flag_line(line: str) -> FindingKind | None:
    """Why ``line`` is an attempt to override the stack, or None."""
    seen = _read_as_written(line)
    if _CONTROL.search(seen):
        return "control token"
    if _FAKE_TURN.search(seen):
        return "fake turn"
    if any(pattern.search(seen) for pattern in _OVERRIDE):
        return "override"
    return None


def _clean(text: str, where: str, findings: list[Finding]) -> str:
    """``text`` without its flagged lines (each recorded in ``findings``)."""
    kept = []
    for line in text.splitlines():
        kind = flag_line(line)
        if kind is None:
            kept.append(line)
        else:
            findings.append(Finding(where, kind, line.strip()))
    return "\n".join(kept).strip()


# -- the layer -------------------------------------------------------------------------


def layer_name_for(card_name: str) -> str:
    """A layer name from a card's name: ``Captain Mira!`` → ``captain-mira``."""
    ascii_name = unicodedata.normalize("NFKD", card_name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:40].strip("-")
    return slug or "character"


def _fill(text: str, name: str) -> str:
    """Placeholders as SillyTavern fills them for a chat with "the user"."""
    for placeholder, value in (("{{char}}", name), ("<BOT>", name), ("{{user}}", "the user"),
                               ("<USER>", "the user")):
        text = re.sub(re.escape(placeholder), value, text, flags=re.IGNORECASE)
    return text.replace("{{original}}", "").strip()


def card_layer(card: Card, name: str | None = None) -> CardImport:
    """The persona layer a card becomes, with the import report.

    Raises:
        PackageError: ``name`` is not a valid layer name, or the card has no usable text.
    """
    data = card.data
    findings: list[Finding] = []
    notes: list[str] = []
    char = data.name.strip()

    def part(value: str, where: str) -> str:
        return _clean(_fill(value, char), where, findings)

    if "{{original}}" in data.system_prompt:
        notes.append("the card's system prompt asks for {{original}}: in cabot the stack's "
                     "own prompt is always kept, before or after the card's as layered")
    sections = []
    system = part(data.system_prompt, "system_prompt")
    if system:
        sections.append(system)
    description = part(data.description, "description")
    if description:
        sections.append(description)
    personality = part(data.personality, "personality")
    if personality:
        sections.append(f"{char}'s personality: {personality}")
    scenario = part(data.scenario, "scenario")
    if scenario:
        sections.append(f"Scenario: {scenario}")
    examples = part(re.sub(r"<START>", "", data.mes_example, flags=re.IGNORECASE),
                    "mes_example")
    if examples:
        sections.append(f"Example dialogue:\n{examples}")
    if not sections:
        raise PackageError(f"The card {char!r} has no description, personality, scenario, "
                           "examples or system prompt to make a layer of.")
    prompt = "\n\n".join(sections)
    if len(prompt) > MAX_PROMPT_CHARS:
        notes.append(f"the card's text was cut to {MAX_PROMPT_CHARS} characters")
        prompt = prompt[:MAX_PROMPT_CHARS]
    if data.first_mes or data.alternate_greetings:
        notes.append("the first message and alternate greetings are not used: cabot answers, "
                     "it does not open conversations")
    lorebook = _lorebook(data.character_book, char, findings, notes)
    layer_name = name or layer_name_for(char)
    about = f"Character card: {char}" + (f" by {data.creator}" if data.creator else "")
    try:
        layer = Layer(
            name=layer_name,
            description=about[:200],
            version=(data.character_version or "1")[:40],
            prompt=prompt,
            post_history=part(data.post_history_instructions, "post_history_instructions"),
            lorebook=lorebook,
        )
    except ValidationError as error:
        problems = "; ".join(str(item["msg"]) for item in error.errors())
        raise PackageError(f"The card cannot become layer {layer_name!r}: {problems}. "
                           "Choose another name (1-40 lowercase letters, digits, '-' or '_')."
                           ) from None
    return CardImport(card, layer, tuple(findings), tuple(notes))


def _lorebook(book: CharacterBook | None, char: str, findings: list[Finding],
              notes: list[str]) -> Lorebook | None:
    if book is None or not book.entries:
        return None
    entries = []
    skipped = 0
    for index, raw in enumerate(book.entries):
        label = raw.name or raw.comment or f"#{index + 1}"
        if not raw.enabled:
            skipped += 1
            continue
        content = _clean(_fill(raw.content, char), f"lorebook entry {label!r}", findings)
        keys = tuple(k for k in raw.keys if k.strip())
        if not content or (not keys and not raw.constant):
            skipped += 1
            continue
        try:
            entries.append(LoreEntry(
                keys=keys, content=content, name=label[:80],
                secondary_keys=tuple(k for k in raw.secondary_keys if k.strip()),
                selective=bool(raw.selective), constant=bool(raw.constant),
                case_sensitive=bool(raw.case_sensitive), use_regex=raw.use_regex,
                insertion_order=raw.insertion_order,
                priority=raw.priority if raw.priority is not None else 10,
                position="before" if raw.position == "before_char" else "after",
            ))
        except ValidationError as error:
            skipped += 1
            notes.append(f"lorebook entry {label!r} left out: {error.errors()[0]['msg']}")
    if skipped:
        notes.append(f"{skipped} lorebook entr{'y' if skipped == 1 else 'ies'} disabled, "
                     "empty or unusable, left out")
    if not entries:
        return None
    budget = book.token_budget or DEFAULT_LORE_BUDGET
    if budget > MAX_LORE_BUDGET:
        notes.append(f"the lorebook's token budget {budget} was lowered to {MAX_LORE_BUDGET}")
        budget = MAX_LORE_BUDGET
    return Lorebook(name=(book.name or "")[:80], scan_depth=min(max(book.scan_depth or 4, 1),
                                                                100),
                    token_budget=max(budget, 1), entries=tuple(entries))


def card_from_json(value: dict[str, Any], source: str = "card") -> Card:
    """A card from already-parsed JSON (for tests and tools)."""
    return _parse_json(json.dumps(value), source, "JSON")
