"""Errors raised by profiles/.

``CabotError`` is the root of every error cabot raises; it lives here because
profiles/ imports nothing from the rest of cabot. The whole tree is drawn in
``bot/errors.py``.
"""

from __future__ import annotations


class CabotError(Exception):
    """Root of every error cabot raises on purpose.

    ``str(error)`` is a sentence a moderator understands: what was wrong and what to do.
    """


class ProfileError(CabotError):
    """A layer or profile cannot be loaded, found or composed."""


class LayerFileError(ProfileError):
    """A layer or profile file is malformed: names the file, the field and what is allowed."""


class CompositionError(ProfileError):
    """A stack of layers cannot be composed: a conflict, two grammars or a missing requirement."""


class UnknownNameError(ProfileError):
    """A profile or layer name that does not exist; carries close matches as suggestions."""

    def __init__(self, kind: str, name: str, suggestions: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.suggestions = suggestions
        hint = f" Did you mean {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        super().__init__(
            f"There is no {kind} called {name!r}.{hint} "
            f"Use /profile {'list' if kind == 'profile' else 'layers'} to see them all."
        )


class PackageError(ProfileError):
    """A layer package or character card cannot be read, trusted or imported as it is."""
