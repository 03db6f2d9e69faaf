"""PNG character cards for tests: a small image with text chunks, written with the stdlib."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path
from typing import Any

CARDS = Path(__file__).parents[1] / "data" / "cards"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return (struct.pack(">I", len(body)) + kind + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))


def png(text_chunks: list[tuple[str, bytes]], size: int = 4) -> bytes:
    """A ``size`` by ``size`` grey RGB PNG carrying ``text_chunks`` as tEXt chunks."""
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x80\x80\x80" * size for _ in range(size))
    parts = [PNG_SIGNATURE, chunk(b"IHDR", header)]
    parts += [chunk(b"tEXt", keyword.encode("latin-1") + b"\0" + text)
              for keyword, text in text_chunks]
    parts += [chunk(b"IDAT", zlib.compress(rows)), chunk(b"IEND", b"")]
    return b"".join(parts)


def card_chunk(card: dict[str, Any]) -> bytes:
    """A card as SillyTavern writes it into a text chunk: base64 of its JSON."""
    return base64.b64encode(json.dumps(card, ensure_ascii=False).encode("utf-8"))


def load(name: str) -> dict[str, Any]:
    """A fixture card's JSON."""
    value: dict[str, Any] = json.loads((CARDS / name).read_text(encoding="utf-8"))
    return value


def write_fixtures() -> None:
    """Write the PNG fixtures from the JSON ones (``python -m tests.helpers.cards``).

    The V3 PNG carries a ``ccv3`` chunk and, as SillyTavern writes it, a ``chara`` chunk
    with the same card as V2, for older readers.
    """
    mira = load("mira.v2.json")
    (CARDS / "mira.v2.png").write_bytes(png([("chara", card_chunk(mira))]))
    nyx = load("nyx.v3.json")
    as_v2 = {**nyx, "spec": "chara_card_v2", "spec_version": "2.0"}
    (CARDS / "nyx.v3.png").write_bytes(png([("chara", card_chunk(as_v2)),
                                            ("ccv3", card_chunk(nyx))]))


if __name__ == "__main__":
    write_fixtures()
