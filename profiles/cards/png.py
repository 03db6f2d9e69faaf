"""PNG text chunks (``tEXt``, ``zTXt`` and ``iTXt``), read with the standard library.

A card needs its text chunks and nothing else of the image, so no imaging library is
needed: ``struct`` walks the chunks and ``zlib`` checks each CRC and inflates compressed
text.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

from profiles.errors import PackageError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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
