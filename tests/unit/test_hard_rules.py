"""Hard rules hold against obfuscation: banned words, links, personal data, refusals."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from bot.filters import BANNED_REPLACEMENT, OutputFilter, refusal_for
from bot.rules.checks import CHECKS, iban_valid, luhn_valid
from profiles import ComposedPlan, compose, load_builtin_library
from profiles.library import parse_layer
from profiles.models import RedactCheck, RedactRule, RefuseRule

SCUNTHORPE = ["ass", "cunt", "cock", "rapist", "dick", "rape"]
ORDINARY = ["Paris", "banana", "France"]


def stream(filter_: OutputFilter, text: str, piece: int) -> list[str]:
    """Every visible state while ``text`` streams in pieces of ``piece`` characters."""
    visible, states = "", []
    for start in range(0, len(text), piece):
        visible += filter_.feed(text[start : start + piece])
        states.append(visible)
    visible += filter_.flush()
    states.append(visible)
    return states


def plan_of(profile: str) -> ComposedPlan:
    library = load_builtin_library()
    return compose(library.stack(library.profile(profile).layers))


def profile_filter(profile: str) -> OutputFilter:
    plan = plan_of(profile)
    return OutputFilter(banned=[s.value for s in plan.banned],
                        redact=[s.value for s in plan.redact])


def test_the_scunthorpe_words_survive() -> None:
    text = ("A class will assume that Scunthorpe serves a cocktail; the therapist reads "
            "Dickens and eats a grape. Rapeseed grows in Essex, and Cockburn is a name.")
    for piece in (1, 4, 9):
        assert stream(OutputFilter(banned=SCUNTHORPE), text, piece)[-1] == text


@pytest.mark.parametrize(
    "written",
    ["shít", "Páris", "P\u0430ris", "P4R1S", "**Par**is", "sh_i_t", "$h1t", "d-a-m-n",
     "d a m n", "d.a.m.n", "D A M N", "B-A-N-A-N-A", "sh\u200bit", "FRANCE",
     "\uff30\uff21\uff32\uff29\uff33", "Ban-ana", "Fran-ce", "shi-t",
     "bananas", "damned", "shitty", "P-A-R-I-S", "b a n a n a", "Bananacabalad"],
)
@pytest.mark.parametrize("piece", [1, 2, 5])
def test_an_obfuscated_banned_word_never_shows(written: str, piece: int) -> None:
    filter_ = OutputFilter(banned=[*ORDINARY, "shit", "damn"])
    text = f"Here you go: {written}. Anything else?"
    states = stream(filter_, text, piece)
    for state in states:
        assert written not in state
    assert states[-1].replace("**", "") == f"Here you go: {BANNED_REPLACEMENT}. Anything else?"


@pytest.mark.parametrize(
    "address",
    ["https://example.com/a?b=c", "hxxps://example[.]com/x", "http[:]//example.org",
     "www.example.org", "www dot example dot org", "example.com", "EXAMPLE.CO.UK",
     "example dot com", "example[dot]com", "ex\u0430mple.com", "john@example.com",
     "john [at] example [dot] com", "john at example dot com", "john(at)example(dot)net",
     "firstname.lastname [at] some-company [dot] co [dot] uk"],
)
@pytest.mark.parametrize("piece", [1, 3, 7])
def test_no_part_of_an_address_shows_mid_stream(address: str, piece: int) -> None:
    text = f"Write to {address} today, or call."
    for state in stream(profile_filter("kids"), text, piece):
        assert "example" not in state.lower() and "ex\u0430mple" not in state
        assert "john" not in state and "firstname" not in state
    assert "removed]" in stream(profile_filter("kids"), text, piece)[-1]


@pytest.mark.parametrize(
    ("secret", "replacement"),
    [
        ("+44 20 7946 0958", "[phone number removed]"),
        ("(555) 123-4567", "[phone number removed]"),
        ("555-123-4567", "[phone number removed]"),
        ("06 12 34 56 78", "[phone number removed]"),
        ("06,12345678", "[phone number removed]"),
        ("555,867,5309", "[phone number removed]"),
        # What the model wrote back in red-team runs: a 7-digit local number after a
        # bracketed code, three groups of three, four and four digits.
        ("(5) 123-467", "[phone number removed]"),
        ("374 316 208", "[phone number removed]"),
        ("2015-1037", "[phone number removed]"),
        # One-digit groups do not hide a number (a red-team reply wrote "2016-8/35").
        ("2016-8/35", "[phone number removed]"),
        ("555-8-1234", "[phone number removed]"),
        ("4111 1111 1111 1111", "[card number removed]"),
        ("4111-1111-1111-1111", "[card number removed]"),
        ("5500005555555559", "[card number removed]"),
        ("DE89 3704 0044 0532 0130 00", "[IBAN removed]"),
        ("GB82WEST12345698765432", "[IBAN removed]"),
        ("jane.doe@mail.example.org", "[address removed]"),
    ],
)
@pytest.mark.parametrize("piece", [1, 4])
def test_personal_data_never_shows(secret: str, replacement: str, piece: int) -> None:
    text = f"Sure: {secret}. Keep it safe."
    digits = "".join(c for c in secret if c.isalnum())
    for state in stream(profile_filter("kids"), text, piece):
        assert digits[-6:] not in "".join(c for c in state if c.isalnum())
    shown = stream(profile_filter("support"), text, piece)[-1]
    assert shown == f"Sure: {replacement}. Keep it safe."


@pytest.mark.parametrize(
    ("word", "secret", "replacement"),
    [
        # What the model wrote in a red-team run, asked for a card number.
        ("santop", "2019-1278-1354", "[phone number removed]"),
        ("tel", "555.123.4567", "[phone number removed]"),
        ("id_", "555-123-4567", "[phone number removed]"),
        ("card", "4111111111111111", "[card number removed]"),
    ],
)
@pytest.mark.parametrize("piece", [1, 4])
def test_a_number_glued_to_a_word_is_still_read(word: str, secret: str, replacement: str,
                                                piece: int) -> None:
    text = f"Sure: {word}{secret}. Keep it safe."
    digits = "".join(c for c in secret if c.isdigit())
    for state in stream(profile_filter("kids"), text, piece):
        assert digits[-6:] not in "".join(c for c in state if c.isdigit())
    assert stream(profile_filter("support"), text, piece)[-1] == (
        f"Sure: {word}{replacement}. Keep it safe.")


@pytest.mark.parametrize(
    "text",
    [
        "The war lasted from 1914-1918, and in 1990 2000 2010 things changed.",
        "On 2024-01-15 at 10:30 we paid 3.14159 for 1,000,000 items.",
        "Count with me: 0 1 2 3 4 5 6 7 8 9 10.",
        "The card 4111 1111 1111 1112 fails its checksum.",
        "The account DE89 3704 0044 0532 0130 01 fails its checksum.",
        "Run setup.py, read README.md and try Node.js, e.g. at 5 p.m. in the U.S.",
        "A red dot in the middle; connect the dot to the line; the dot com bubble.",
        "Look at the sky, meet at noon, arrive at 5.30 sharp.",
        "It cost 1,234,567.89 in all; pick 12, 34, 56, 78 or 90, and page 3,141,592.",
        "France has 67 000 000 people, the city 1 234 567, the world 8 000 000 000.",
        "From 1939-1945 and 2015-2020, in 1990 2000 2010.",
        "The ISBN 978-3-16-148410-0 and 0-306-40615-2; version 3.11.7 of it.",
        "Due 15/01/2024, 2024.1.15 or 01-15-2024, whichever comes first.",
        # Digits after letters: a version, a hash, a name, a chip.
        "Update to v10.0.19045.2965 (commit 4f3a2b1234567890) as user1234567 on x86-64.",
    ],
)
def test_numbers_and_dots_that_are_no_personal_data_survive(text: str) -> None:
    assert stream(profile_filter("kids"), text, 3)[-1] == text


@pytest.mark.parametrize(
    "address",
    ["192.168.0.1", "10.0.0.254:8080/admin", "78901.com", "163.com/news", "http://192.168.0.1"],
)
@pytest.mark.parametrize("piece", [1, 3, 7])
def test_network_addresses_and_numeric_hosts_are_links(address: str, piece: int) -> None:
    text = f"Open {address} in your browser."
    states = stream(profile_filter("kids"), text, piece)
    for state in states:
        assert address not in state and address.split("/")[0] not in state
    assert states[-1] == "Open [link removed] in your browser."


def test_a_network_address_is_no_personal_data() -> None:
    library = load_builtin_library()
    plan = compose(library.stack(["base", "no-pii"]))
    filter_ = OutputFilter(redact=[s.value for s in plan.redact])
    text = "The router answers at 192.168.1.1 and the NAS at 10.0.0.2."
    assert stream(filter_, text, 3)[-1] == text


def test_the_checksums() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("DE89370400440532013000") and not iban_valid("DE89370400440532013001")
    assert not iban_valid("DE8937040044053201300")  # a German IBAN has 22 characters


def test_every_named_check_is_known_to_the_layer_format() -> None:
    assert set(CHECKS) == set(get_args(RedactCheck))


@pytest.mark.parametrize("message", ["show me p0rn", "s3x stories", "anything n.s.f.w?",
                                     "pornography please", "P O R N", "nüdes", "SEXY pics"])
def test_family_friendly_refuses_folded_input(message: str) -> None:
    rules = [s.value for s in plan_of("kids").refuse]
    assert refusal_for(message, rules) is not None


@pytest.mark.parametrize("message", ["I live in Essex", "a sextant at sea", "Sussex",
                                     "the nudibranch is a sea slug"])
def test_family_friendly_lets_ordinary_input_through(message: str) -> None:
    assert refusal_for(message, [s.value for s in plan_of("kids").refuse]) is None


def test_an_exact_rule_matches_only_what_is_written() -> None:
    folded = RefuseRule(pattern=r"\bsecret\b")
    exact = RefuseRule(pattern=r"\bsecret\b", exact=True)
    assert refusal_for("s3cr3t", [folded]) is not None
    assert refusal_for("s3cr3t", [exact]) is None
    assert refusal_for("SECRET", [exact]) is not None  # still case-insensitive
    redact = RedactRule(pattern=r"\bcode\b", replacement="[x]", exact=True)
    assert stream(OutputFilter(redact=[redact]), "c0de and code.", 2)[-1] == "c0de and [x]."


def test_a_check_confirms_each_candidate() -> None:
    rule = RedactRule(pattern=r"\b\d(?:[ -]?\d){12,18}\b", replacement="[card]", check="luhn")
    text = "4111 1111 1111 1111 but not 4111 1111 1111 1112."
    assert stream(OutputFilter(redact=[rule]), text, 3)[-1] == "[card] but not 4111 1111 1111 1112."


def test_the_readme_layer_example_parses_with_its_checks_and_exact_rules() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    example = readme.split("A layer is a TOML file:\n\n```toml\n", 1)[1].split("```", 1)[0]
    layer = parse_layer(example, "README.md")
    assert [rule.check for rule in layer.rules.redact] == [None, "luhn", None]
    assert layer.rules.redact[2].exact


def echo_filter(profile: str, said: str) -> OutputFilter:
    plan = plan_of(profile)
    return OutputFilter(banned=[s.value for s in plan.banned],
                        redact=[s.value for s in plan.redact], echoes=(said,))


@pytest.mark.parametrize(
    "reply",
    ["No, 12345678 is what you said.", "Sure: 0612345678.", "It is 6123 4567, ok.",
     "Here: 1 2 3 4 5 6 7 8."],
)
@pytest.mark.parametrize("piece", [1, 3])
def test_a_number_the_user_gave_does_not_come_back_regrouped(reply: str, piece: int) -> None:
    # The model echoed the last 8 digits of a phone number without its 06 in a red-team
    # run: no single shape of a phone, but the user's own number to a reader.
    said = "My number is 06 12 34 56 78. Please repeat it back to me."
    for state in stream(echo_filter("kids", said), reply, piece):
        assert "2345" not in "".join(c for c in state if c.isdigit())
    assert "[phone number removed]" in stream(echo_filter("kids", said), reply, piece)[-1]


@pytest.mark.parametrize("piece", [1, 3])
def test_an_account_number_the_user_gave_does_not_come_back_with_a_group_left_out(
    piece: int,
) -> None:
    # A red-team run: asked to write an IBAN with dashes, the model gave it back without
    # one of its groups, which no longer passes the IBAN check.
    said = "Write DE89 3704 0044 0532 0130 00 with dashes between the groups."
    reply = "The latest message to the group chat was: DE89 3704 0532 0130."
    states = stream(echo_filter("kids", said), reply, piece)
    for state in states:
        assert "0532" not in state and "3704" not in state
    assert "[IBAN removed]" in states[-1]


def test_numbers_the_user_wrote_that_are_no_personal_data_come_back() -> None:
    said = "What is 12345678 times 2, and what happened in 1914-1918?"
    reply = "It is 24691356; 12345678 doubled. The war lasted 1914-1918."
    assert stream(echo_filter("kids", said), reply, 3)[-1] == reply
