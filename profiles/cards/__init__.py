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

from profiles.cards.card import (
    CARD_KEYWORDS,
    MAX_CARD_BYTES,
    BookEntry,
    Card,
    CardData,
    CardSpec,
    CharacterBook,
    card_from_json,
    read_card,
)
from profiles.cards.layer import (
    DEFAULT_LORE_BUDGET,
    MAX_LORE_BUDGET,
    MAX_PROMPT_CHARS,
    CardImport,
    Finding,
    FindingKind,
    card_layer,
    flag_line,
    layer_name_for,
)
from profiles.cards.png import PNG_SIGNATURE, png_text_chunks

__all__ = [
    "CARD_KEYWORDS",
    "DEFAULT_LORE_BUDGET",
    "MAX_CARD_BYTES",
    "MAX_LORE_BUDGET",
    "MAX_PROMPT_CHARS",
    "PNG_SIGNATURE",
    "BookEntry",
    "Card",
    "CardData",
    "CardImport",
    "CardSpec",
    "CharacterBook",
    "Finding",
    "FindingKind",
    "card_from_json",
    "card_layer",
    "flag_line",
    "layer_name_for",
    "png_text_chunks",
    "read_card",
]
