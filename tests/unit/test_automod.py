"""Discord AutoMod keyword rules as a layer: what AutoMod would block, cabot never shows."""

from __future__ import annotations

import pytest

from bot.filters import OutputFilter
from profiles import compose
from profiles.automod import (
    AutoModRule,
    Entry,
    automod_layer,
    compare,
    is_automod_layer,
    layer_entries,
    wildcard_regex,
)
from profiles.library import parse_layer
from profiles.packages import layer_source

RULES = (
    AutoModRule("1", "Words", "keyword", keywords=("badword", "free nitro", "*scam*",
                                                   "spoil*", "*cat")),
    AutoModRule("2", "Ass", "keyword", keywords=("*ass*",),
                allow_list=("class", "pass*", "*assassin*")),
    AutoModRule("3", "Invites", "keyword", regex_patterns=(r"discord\.gg/\w+", "(broken")),
    AutoModRule("4", "Preset", "keyword_preset", presets=("profanity", "slurs")),
    AutoModRule("5", "Pings", "mention_spam"),
    AutoModRule("6", "Off", "keyword", enabled=False, keywords=("secret",)),
)


def shown(text: str) -> str:
    layer = automod_layer(RULES).layer
    output = OutputFilter(banned=layer.rules.banned, redact=layer.rules.redact)
    return output.feed(text) + output.flush()


@pytest.mark.parametrize(("text", "expected"), [
    ("a badword here", "a ▇▇▇ here"),
    ("get FREE  NITRO now", "get ▇▇▇ now"),
    ("scammers and a scam", "▇▇▇ and a ▇▇▇"),
    ("spoilers: spoil it", "▇▇▇: ▇▇▇ it"),
    ("bobcat catalog", "▇▇▇ catalog"),
    ("pass passing assassin grass", "pass passing assassin ▇▇▇"),
    ("a class act, a b4dw0rd", "a class act, a ▇▇▇"),
    ("join discord.gg/abc", "join ▇▇▇"),
    ("a secret for the cats", "a secret for the cats"),
])
def test_the_layer_masks_what_automod_blocks(text: str, expected: str) -> None:
    assert shown(text) == expected


def test_discord_wildcards() -> None:
    assert wildcard_regex("cat") == r"cat(?!\w)"
    assert wildcard_regex("cat*") == r"cat\w*"
    assert wildcard_regex("*cat") == r"\w*cat(?!\w)"
    assert wildcard_regex("*cat*") == r"\w*cat\w*"
    assert wildcard_regex("free nitro") == r"free\s+nitro(?!\w)"


def test_the_report_names_what_could_not_be_carried_over() -> None:
    imported = automod_layer(RULES, "serena")
    report = imported.report()
    assert report.startswith("3 AutoMod keyword rule(s) → layer 'automod': 6 keyword(s), "
                             "1 regular expression(s).")
    assert "'(broken' is not one cabot can read" in report
    assert "rule 'Preset' uses Discord's own word lists (profanity, slurs)" in report
    assert "rule 'Pings' limits mentions" in report and "rule 'Off' is disabled" in report
    layer = imported.layer
    assert is_automod_layer(layer) and "imported by serena" in layer.description
    assert layer.rules.banned == ("badword", "free nitro")
    assert parse_layer(layer_source(layer), "automod") == layer  # stored as TOML
    assert compose([layer]).redact[0].value.replacement == "▇▇▇"


def test_compare_says_what_changed_on_the_server() -> None:
    layer = automod_layer(RULES).layer
    assert set(layer_entries(layer)) == set(automod_layer(RULES).entries)
    assert compare(layer, RULES).in_sync
    changed = (AutoModRule("1", "Words", "keyword", keywords=("badword", "*scam*", "phish*")),)
    diff = compare(layer, changed)
    assert diff.missing == (Entry("keyword", "phish*"),)
    assert set(diff.stale) == {Entry("keyword", "free nitro"), Entry("keyword", "spoil*"),
                               Entry("keyword", "*cat"), Entry("keyword", "*ass*"),
                               Entry("regex", r"discord\.gg/\w+")}


def test_a_keyword_with_parentheses_survives_the_comment() -> None:
    rules = (AutoModRule("1", "R", "keyword", keywords=("*(x)*",),
                         regex_patterns=(r"a(b)c%d",)),)
    layer = automod_layer(rules).layer
    assert set(layer_entries(layer)) == {Entry("keyword", "*(x)*"), Entry("regex", "a(b)c%d")}
