"""Stacks named in a command (a profile, or layers), composed inside this community's bounds."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.commands.context import CommandContext
from bot.commands.handlers import _check_bounded, _library
from bot.errors import CommandError
from profiles import ComposedPlan, Library
from profiles.bounds import Bound, compose_bounded
from profiles.library import suggest

_JOINERS = re.compile(r"[+,]")


@dataclass(frozen=True)
class Candidate:
    """A stack to compare or preview: its label, the layers chosen and its bounded plan."""

    label: str
    names: tuple[str, ...]
    plan: ComposedPlan
    bounds: tuple[Bound, ...] = ()


def split_names(words: Sequence[str]) -> tuple[str, ...]:
    """Names from words, each of which may join several with ``+`` or ``,``."""
    return tuple(name for word in words for name in _JOINERS.split(word.lower()) if name)


def known(library: Library, word: str) -> bool:
    """Whether ``word`` names a profile, or only layers (``base+concise``)."""
    names = split_names([word])
    if len(names) == 1 and names[0] in library.profiles:
        return True
    return bool(names) and all(name in library.layers for name in names)


async def candidate(ctx: CommandContext, words: Sequence[str]) -> Candidate:
    """The stack ``words`` name: one profile, or layers bottom first.

    The community's floor and locks bind it as they would bind it here.

    Raises:
        CommandError: a name is neither a profile nor a layer (with suggestions).
        BoundLayerError: it clashes with the floor or a lock.
        ProfileError: it does not compose.
    """
    library = await _library(ctx)
    names = split_names(words)
    if not names:
        raise CommandError("Name a profile, or layers separated by spaces or '+'.")
    if len(names) == 1 and names[0] in library.profiles:
        profile = library.profile(names[0])
        selected, label = profile.layers, f"profile '{profile.name}'"
    else:
        for name in names:
            if name not in library.layers:
                raise CommandError(_unknown(library, name, single=len(names) == 1))
        selected, label = names, f"layers {', '.join(names)}"
    bounds = await _check_bounded(ctx, library, selected)
    plan = compose_bounded(library.stack(selected), bounds)
    return Candidate(label, selected, plan, bounds)


async def in_effect(ctx: CommandContext) -> Candidate:
    """The stack in effect where the command was sent."""
    resolved = await ctx.resolver.resolve(ctx.message.scope)
    what = (f"profile '{resolved.profile}'" if resolved.profile
            else f"layers {', '.join(resolved.plan.layers)}")
    return Candidate(f"the stack in effect here ({what})", resolved.plan.layers,
                     resolved.plan, resolved.bounds)


def _unknown(library: Library, name: str, *, single: bool) -> str:
    pool = [*library.layers, *library.profiles] if single else list(library.layers)
    hint = suggest(name, pool)
    kind = "profile or layer" if single else "layer"
    return (f"There is no {kind} called {name!r}."
            + (f" Did you mean {', '.join(repr(h) for h in hint)}?" if hint else "")
            + " /profile list and /profile layers show them all.")
