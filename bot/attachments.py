"""Files attached to a command, as adapters hand them to the core."""

from __future__ import annotations

from bot.messages import MAX_ATTACHMENT_BYTES, MAX_IMAGE_BYTES, Attachment


def too_large(name: str, size: int) -> Attachment:
    """An attachment not read because it is over `MAX_ATTACHMENT_BYTES`."""
    return Attachment(
        name=name, size=size,
        problem=(f"{name} is {size:,} bytes; cabot reads attached files of up to "
                 f"{size_limit(name) // 1024} KB."),
    )


def unreadable(name: str, size: int, why: str) -> Attachment:
    """An attachment the platform would not hand over (``why``: the platform's words)."""
    return Attachment(name=name, size=size,
                      problem=f"cabot could not download {name} ({why}); try again.")


def size_limit(name: str) -> int:
    """The most bytes adapters read of an attached file called ``name``."""
    return MAX_IMAGE_BYTES if name.lower().endswith(".png") else MAX_ATTACHMENT_BYTES


def from_bytes(name: str, data: bytes) -> Attachment:
    """An attachment read as UTF-8 text (a byte-order mark dropped), its bytes kept too."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return Attachment(name=name, size=len(data), data=data,
                          problem=f"{name} is not a UTF-8 text file.")
    return Attachment(name=name, size=len(data), text=text, data=data)
