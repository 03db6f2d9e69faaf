"""A Discord server's AutoMod keyword rules as a layer, so cabot never posts what they block.

Discord's keyword filters match case-insensitively, with ``*`` as a wildcard at either
end of a keyword: ``cat`` the whole word, ``cat*`` words starting with it, ``*cat`` words
ending with it, ``*cat*`` anywhere inside a word. An allow list names words (same
syntax) that never trigger the rule; regular expressions (Rust syntax) match anywhere.

The layer:

* a plain keyword of a rule without an allow list is a banned word (masked as it
  streams, and its tokens discouraged at sampling — as a banned word, its inflections
  too);
* a wildcard keyword, a keyword of a rule with an allow list, and a regular expression
  are redactions masking the match; each pattern starts with a ``(?#automod …)`` comment
  naming the rule's own keyword, so ``/profile automod show`` and ``/profile explain``
  can say where it came from;
* every match is also found in the folded readings of the reply (look-alike letters,
  leetspeak, spelled-out letters), so the layer holds at least what AutoMod holds.

Keyword presets (Discord's own lists, which it does not publish), mention spam, spam and
member-profile rules are not about a reply's words, or cannot be read: the report names
them. Disabled rules are left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import regex

from profiles.models import Layer, RedactRule, Rules

LAYER_NAME = "automod"
MARK = "The server's AutoMod keyword rules"
"""How an AutoMod layer's description starts (a layer of that name not made here is kept)."""
MASK = "▇▇▇"
TriggerKind = Literal["keyword", "keyword_preset", "mention_spam", "spam", "member_profile",
                      "harmful_link", "unknown"]
_COMMENT = re.compile(r"^\(\?#automod (keyword|regex) (.*?)\)")


@dataclass(frozen=True)
class AutoModRule:
    """One AutoMod rule as a platform adapter reads it."""

    id: str
    name: str
    trigger: TriggerKind
    enabled: bool = True
    keywords: tuple[str, ...] = ()
    regex_patterns: tuple[str, ...] = ()
    allow_list: tuple[str, ...] = ()
    presets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Entry:
    """One keyword or pattern of the server, as it stands in the layer."""

    kind: Literal["keyword", "regex"]
    text: str

    def describe(self) -> str:
        return f"{self.kind} {self.text!r}"


@dataclass(frozen=True)
class AutoModImport:
    """The layer made from a server's rules, and what could not be carried over."""

    layer: Layer
    entries: tuple[Entry, ...]
    rules_used: tuple[str, ...]
    skipped: tuple[str, ...] = field(default=())

    def report(self) -> str:
        keywords = sum(1 for e in self.entries if e.kind == "keyword")
        patterns = len(self.entries) - keywords
        lines = [f"{len(self.rules_used)} AutoMod keyword rule(s) → layer {LAYER_NAME!r}: "
                 f"{keywords} keyword(s), {patterns} regular expression(s)."]
        lines.extend(f"Not imported: {why}" for why in self.skipped)
        return "\n".join(lines)


def _encode(text: str) -> str:
    return text.replace("%", "%25").replace(")", "%29").replace("\n", "%0A")


def _decode(text: str) -> str:
    return text.replace("%0A", "\n").replace("%29", ")").replace("%25", "%")


def wildcard_regex(keyword: str) -> str:
    """Discord's keyword syntax as a regular expression over words."""
    text = keyword.strip()
    head, tail = text.startswith("*"), text.endswith("*") and len(text) > 1
    core = text.strip("*").strip()
    body = r"\s+".join(regex.escape(part) for part in core.split())
    start = r"\w*" if head else ""
    end = r"\w*" if tail else r"(?!\w)"
    return f"{start}{body}{end}"


def _allowed(allow_list: Sequence[str]) -> str:
    """A look-ahead that skips a word the allow list names (anchored at a word's start)."""
    words = [wildcard_regex(word) for word in allow_list if word.strip("* ")]
    if not words:
        return ""
    return "(?!(?:" + "|".join(w.removesuffix("(?!\\w)") for w in words) + r")(?!\w))"


def automod_layer(rules: Iterable[AutoModRule], imported_by: str = "") -> AutoModImport:
    """The layer holding every enabled keyword rule of a server."""
    banned: list[str] = []
    redact: list[RedactRule] = []
    entries: list[Entry] = []
    used: list[str] = []
    skipped: list[str] = []
    for rule in rules:
        label = f"rule {rule.name!r}"
        if not rule.enabled:
            skipped.append(f"{label} is disabled")
            continue
        if rule.trigger == "keyword_preset":
            skipped.append(f"{label} uses Discord's own word lists ({', '.join(rule.presets)}),"
                           " which Discord does not publish; the family-friendly layer bans "
                           "common profanity")
            continue
        if rule.trigger == "mention_spam":
            skipped.append(f"{label} limits mentions; the no-mentions layer strips them")
            continue
        if rule.trigger != "keyword":
            skipped.append(f"{label} is a {rule.trigger.replace('_', ' ')} rule, not about "
                           "a message's words")
            continue
        used.append(rule.name)
        allow = _allowed(rule.allow_list)
        for keyword in (k.strip() for k in rule.keywords):
            if not keyword.strip("* "):
                continue
            entries.append(Entry("keyword", keyword))
            if "*" not in keyword and not allow:
                banned.append(keyword)
                continue
            pattern = (f"(?#automod keyword {_encode(keyword)})(?<!\\w){allow}"
                       f"{wildcard_regex(keyword)}")
            redact.append(RedactRule(pattern=pattern, replacement=MASK))
        for source in rule.regex_patterns:
            try:
                regex.compile(source, regex.VERSION0)
            except regex.error as error:
                skipped.append(f"{label}: the regular expression {source!r} is not one cabot "
                               f"can read ({error})")
                continue
            entries.append(Entry("regex", source))
            redact.append(RedactRule(
                pattern=f"(?#automod regex {_encode(source)}){allow}(?:{source})",
                replacement=MASK))
    count = f"{len(entries)} keyword(s) and pattern(s) from {len(used)} rule(s)"
    by = f", imported by {imported_by}" if imported_by else ""
    layer = Layer(
        name=LAYER_NAME,
        description=f"{MARK}: {count}{by}"[:200],
        rules=Rules(banned=tuple(dict.fromkeys(banned)), redact=tuple(redact)),
    )
    return AutoModImport(layer, tuple(dict.fromkeys(entries)), tuple(used), tuple(skipped))


def layer_entries(layer: Layer) -> tuple[Entry, ...]:
    """The server's keywords and patterns an AutoMod layer holds."""
    entries = [Entry("keyword", word) for word in layer.rules.banned]
    for rule in layer.rules.redact:
        found = _COMMENT.match(rule.pattern)
        if found is not None:
            kind: Literal["keyword", "regex"] = "keyword" if found[1] == "keyword" else "regex"
            entries.append(Entry(kind, _decode(found[2])))
    return tuple(dict.fromkeys(entries))


def is_automod_layer(layer: Layer) -> bool:
    """Whether ``layer`` was made by an AutoMod import."""
    return layer.name == LAYER_NAME and layer.description.startswith(MARK)


@dataclass(frozen=True)
class AutoModDiff:
    """What the server's rules hold that the layer does not, and the other way round."""

    missing: tuple[Entry, ...]
    """In the server's rules, not in the layer: cabot could post them."""
    stale: tuple[Entry, ...]
    """In the layer, no longer in the server's rules."""

    @property
    def in_sync(self) -> bool:
        return not self.missing and not self.stale


def compare(layer: Layer, rules: Iterable[AutoModRule]) -> AutoModDiff:
    """How ``layer`` differs from what importing ``rules`` now would make."""
    have = set(layer_entries(layer))
    want = automod_layer(rules).entries
    return AutoModDiff(tuple(e for e in want if e not in have),
                       tuple(e for e in layer_entries(layer) if e not in set(want)))
