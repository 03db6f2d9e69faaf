"""A card as a persona layer: its text in SillyTavern's order, its lorebook, and the
lines that try to override the stack flagged and left out, with the import report a
moderator reads (``profiles.cards`` says what a card becomes and why)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

from pydantic import ValidationError

from profiles.cards.card import Card, CharacterBook
from profiles.errors import PackageError
from profiles.lore import Lorebook, LoreEntry
from profiles.models import Layer

MAX_PROMPT_CHARS = 12_000
"""A layer prompt longer than this is cut (a huge card would fill the context window)."""
DEFAULT_LORE_BUDGET = 256
MAX_LORE_BUDGET = 1024

FindingKind = Literal["override", "fake turn", "control token"]


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

