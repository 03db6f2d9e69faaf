"""Personal layers in resolution: a member's allowed picks on top of the place's stack.

`ProfileResolver.resolve` hands a member's resolution here: the place's own resolution
(cached by the resolver) plus the layers the member picked that are allowed in this place,
composed by `profiles.personal.compose_personal`, which only ever adds restrictions. A
pick that is not allowed here, or no longer composes, is left out with a note, so a reply
is never refused for it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from lru import LRU

from bot.errors import ProfileError
from bot.messages import Scope
from bot.resolution import Resolved
from bot.store.members import MemberStore
from bot.store.reads import Read
from profiles.personal import compose_personal

CACHED_PERSONAL = 4096
"""Personal plans kept, each for one place's resolution and one pick."""


@dataclass(frozen=True)
class PersonalResolved(Resolved):
    """A place's resolution with one member's personal layers on top.

    Attributes:
        personal: the member's layers in the stack (on top, in their order).
    """

    personal: tuple[str, ...] = ()


class PersonalLayers:
    """Composes members' picks on top of the places they talk in."""

    def __init__(self, members: MemberStore) -> None:
        self._members = members
        # Keyed by the place's resolution (its identity: a new resolution is a new object)
        # and the pick; the value keeps that resolution, so its id cannot be reused.
        self._cache: LRU[tuple[int, tuple[str, ...]], tuple[Resolved, Resolved]] = (
            LRU(CACHED_PERSONAL)
        )

    async def apply(self, place: Resolved, scope: Scope, member: str) -> Resolved:
        """``place`` with the layers ``member`` picked and may use here."""
        chosen = await self._members.chosen(scope.platform, scope.community, member)
        if not chosen:
            return place
        allowed = {allowance.layer for allowance in await self._members.allowed(scope)}
        usable = tuple(name for name in chosen
                       if name in allowed and name in place.library.layers)
        key = (id(place), (*usable, "|", *chosen))
        cached = self._cache.get(key)
        if cached is not None and cached[0] is place:
            return cached[1]
        resolved = self._compose(place, chosen, usable)
        self._cache[key] = (place, resolved)
        return resolved

    def read(self, scope: Scope, member: str) -> Read | None:
        """What `apply` would read of ``member``'s pick, if it is not cached."""
        return self._members.chosen_read(scope.platform, scope.community, member)

    @staticmethod
    def _compose(place: Resolved, chosen: tuple[str, ...], usable: tuple[str, ...]
                 ) -> Resolved:
        notes: list[str] = []
        left_out = [name for name in chosen if name not in usable]
        if left_out:
            notes.append(f"Your layer{'s' if len(left_out) != 1 else ''} "
                         f"{', '.join(left_out)} {'is' if len(left_out) == 1 else 'are'} not "
                         "allowed here, so not used here.")
        stack, plan = place.stack, place.plan
        used: tuple[str, ...] = ()
        if usable:
            try:
                stack, plan = compose_personal(
                    place.stack, place.plan, place.library.stack(usable))
                used = tuple(name for name in usable if name not in
                             {layer.name for layer in place.stack})
            except ProfileError as error:
                notes.append(f"Your personal layers are not used here: {error}")
        if not notes and not used:
            return place
        values = {f.name: getattr(place, f.name) for f in dataclasses.fields(place)}
        values.update(stack=stack, plan=plan, warnings=(*place.warnings, *notes))
        return PersonalResolved(**values, personal=used)
