"""Named checks for redaction rules whose pattern alone cannot tell a match (``check = ...``).

A layer's redaction pattern finds candidates; a check decides which part of a candidate,
if any, is really one: a payment card number passes the Luhn checksum, an IBAN the
mod-97 checksum, a phone number has a phone's digit count and shape, a domain ends in a
known top-level domain. Each check returns the span to redact within the candidate, or
None.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping

Check = Callable[[str], tuple[int, int] | None]

_DIGIT = re.compile(r"\d")


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn checksum."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def card(candidate: str) -> tuple[int, int] | None:
    """The candidate (or its first groups, when more digits follow) if it is a card number.

    13-19 digits starting with 2-6 (the issuers' ranges) that pass the Luhn checksum.
    """
    positions = [m.start() for m in _DIGIT.finditer(candidate)]
    if not positions or candidate[positions[0]] not in "23456":
        return None
    ends = [len(positions)]
    ends += [n for n in range(len(positions) - 1, 12, -1)
             if positions[n] - positions[n - 1] > 1]  # where a group ends
    for count in ends:
        if 13 <= count <= 19 and luhn_valid("".join(candidate[p] for p in positions[:count])):
            return 0, positions[count - 1] + 1
    return None


IBAN_LENGTHS: Mapping[str, int] = {
    "ad": 24, "ae": 23, "al": 28, "at": 20, "az": 28, "ba": 20, "be": 16, "bg": 22,
    "bh": 22, "br": 29, "by": 28, "ch": 21, "cr": 22, "cy": 28, "cz": 24, "de": 22,
    "dk": 18, "do": 28, "ee": 20, "eg": 29, "es": 24, "fi": 18, "fo": 18, "fr": 27,
    "gb": 22, "ge": 22, "gi": 23, "gl": 18, "gr": 27, "gt": 28, "hr": 21, "hu": 28,
    "ie": 22, "il": 23, "iq": 23, "is": 26, "it": 27, "jo": 30, "kw": 30, "kz": 20,
    "lb": 28, "lc": 32, "li": 21, "lt": 20, "lu": 20, "lv": 21, "mc": 27, "md": 24,
    "me": 22, "mk": 19, "mr": 27, "mt": 31, "mu": 30, "nl": 18, "no": 15, "pk": 24,
    "pl": 28, "ps": 29, "pt": 25, "qa": 29, "ro": 24, "rs": 22, "sa": 24, "se": 24,
    "si": 19, "sk": 24, "sm": 27, "tn": 24, "tr": 26, "ua": 29, "va": 22, "vg": 24,
    "xk": 20,
}
"""IBAN length per country (ISO 13616 registry); other countries: 15-34 characters."""


def iban_valid(text: str) -> bool:
    """Whether ``text`` (letters and digits only) is an IBAN: its length and mod-97 check."""
    code = text.lower()
    if not (15 <= len(code) <= 34 and code[:2].isalpha() and code[2:4].isdigit()):
        return False
    expected = IBAN_LENGTHS.get(code[:2])
    if expected is not None and len(code) != expected:
        return False
    moved = code[4:] + code[:4]
    number = "".join(str(int(c, 36)) for c in moved)
    return int(number) % 97 == 1


def iban(candidate: str) -> tuple[int, int] | None:
    """The longest prefix of the candidate that is an IBAN (spaces and dashes ignored)."""
    positions = [i for i, c in enumerate(candidate) if c.isalnum()]
    for count in range(min(34, len(positions)), 14, -1):
        if iban_valid("".join(candidate[p] for p in positions[:count])):
            return 0, positions[count - 1] + 1
    return None


_DATE = re.compile(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})|(\d{1,2})([-/.])(\d{1,2})\6(\d{2,4})")


def _date(text: str) -> bool:
    """Whether ``text`` is a date: year-month-day, or day and month (either order) then
    the year, one separator throughout, each part in its range."""
    match = _DATE.fullmatch(text)
    if match is None:
        return False
    if match.group(1):
        return 1 <= int(match.group(3)) <= 12 and 1 <= int(match.group(4)) <= 31
    first, second = int(match.group(5)), int(match.group(7))
    return 1 <= min(first, second) <= 12 and 1 <= max(first, second) <= 31
_GROUPS = re.compile(r"\d+")
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def _isbn(digits: str) -> bool:
    """Whether ``digits`` are an ISBN-13 or ISBN-10 with a valid check digit."""
    if len(digits) == 13 and digits.startswith(("978", "979")):
        return sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10 == 0
    if len(digits) == 10:
        return sum(int(d) * (10 - i) for i, d in enumerate(digits)) % 11 == 0
    return False


def phone(candidate: str) -> tuple[int, int] | None:
    """The candidate, if it reads as a phone number rather than another number.

    7-15 digits (E.164 allows 15); an international ``+`` prefix or an area code in
    brackets is enough; otherwise not a date, a decimal, a rising range or list of years,
    a count (``0 1 2 3 ...``), an ISBN, a network address or thousands
    (``67 000 000``, ``1 234 567``; three groups of three read as a phone, as Spain and
    others write theirs), and a number without separators needs 10-11 digits or a leading
    trunk ``0``.
    """
    text = candidate.strip()
    groups = _GROUPS.findall(text)
    digits = "".join(groups)
    if not 7 <= len(digits) <= 15:
        return None
    span = (0, len(candidate.rstrip()))
    if text.startswith("+") or re.match(r"\(\s*\d{1,5}\s*\)", text):
        return span  # "(555) 123-4567", "(5) 123-467": a bracketed area code
    if _date(text) or _THOUSANDS.fullmatch(text):
        return None
    if len(groups) == 1:
        return span if len(digits) in (10, 11) or digits.startswith("0") else None
    if len(groups) == 2 and "." in text:
        return None  # a decimal number
    if all(len(g) == 4 and g[0] in "12" for g in groups) and groups == sorted(groups):
        return None  # years: "1990 2000", "1914-1918" (but "2015-1037" is a number)
    steps = {int(b) - int(a) for a, b in itertools.pairwise(groups)}
    if len(groups) >= 3 and len(steps) == 1:
        return None  # a count: "1 2 3 4 5 6 7 8 9 10", "2 4 6 8"
    if all(len(g) <= 2 for g in groups) and len(digits) < 9:
        return None  # a list of small numbers
    if any(len(g) == 1 for g in groups[1:]) and _isbn(digits):
        return None  # "978-3-16-148410-0": a book's number, not a phone
    if len(groups) == 4 and all(int(g) <= 255 for g in groups) and set(
            re.sub(r"\d", "", text)) == {"."}:
        return None  # "192.168.1.1": a network address
    if len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:]) and (
            len(groups[0]) < 3 or len(groups) != 3 or "000" in groups[1:]):
        return None  # thousands: "67 000 000", "1 234 567" (but "612 345 678" is a phone)
    return span


TLDS = frozenset("""
com org net edu gov mil int info biz name pro mobi app dev io ai co me tv cc xyz online
site shop store tech blog cloud live news club top fun space website email link page
wiki art design agency studio media life world today social team zone one win vip
uk de fr es it nl be ch at se no dk fi pt ie pl cz sk hu ro bg gr tr ru ua by lt lv ee
si hr rs ba is lu li mc cn jp kr tw hk sg my th vn id ph in pk bd lk np ir il sa ae qa
kw om jo lb eg ma tn dz za ng ke gh tz ug et au nz ca us mx br ar cl pe ve ec uy py bo
cr pa gt do cu jm eu asia
""".split())
"""Known top-level domains: the common generic ones and most country codes.

Endings that are also common file extensions (``setup.py``, ``README.md``) are not read
as domains: see ``CODE_ENDINGS``.
"""

CODE_ENDINGS = frozenset(
    "py sh md rs pl pm so cc am ps js ts go rb java html css json txt csv log sql yml".split()
)
"""File extensions that are also top-level domains, not read as one (``setup.py``)."""

FUNCTION_WORDS = frozenset("""
a an the this that these those my your our his her its their one each every no some
any and or but of to in on at by for with from is are was were be it we you they i he
she
""".split())
"""Words that are no label of a domain: "the dot com bubble" reads ``the.com`` folded."""


def domain(candidate: str) -> tuple[int, int] | None:
    """The candidate, if it is a host name ending in a known top-level domain.

    The candidate may be an e-mail address (the part after ``@`` is checked) or carry a
    path or port; no label may be a function word, and one label besides the ending
    needs two characters (not ``e.g.``, ``U.S.``; ``163.com`` is a host).
    """
    text = candidate.rstrip()
    host = text.rsplit("@", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()
    labels = [label for label in host.split(".") if label]
    if len(labels) < 2:
        return None
    ending = labels[-1]
    if ending not in TLDS or ending in CODE_ENDINGS:
        return None
    if any(label in FUNCTION_WORDS for label in labels):
        return None
    if not any(len(label) >= 2 for label in labels[:-1]):
        return None
    return 0, len(text)


CHECKS: Mapping[str, Check] = {"luhn": card, "iban": iban, "phone": phone, "domain": domain}
"""The checks a redaction rule may name."""

NUMERIC = frozenset({"luhn", "iban", "phone"})
"""Checks of numbers: their candidates are not looked for where digits read as letters."""
