"""Which stack of layers applies where: thread, then channel, then community, then default."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lru import LRU

from bot.errors import LayerFileError, ProfileError
from bot.messages import Scope
from bot.store import AlignmentStore, Binding, Level, Lock
from bot.store.models import CommunityAlignment, PlaceAlignment
from bot.store.reads import Read
from profiles import ComposedPlan, Layer, Library, Profile
from profiles.bounds import Bound, bounded_stack, compose_bounded
from profiles.library import parse_layer

if TYPE_CHECKING:
    from bot.personal import PersonalLayers

log = logging.getLogger(__name__)

LEVEL_ORDER: tuple[Level, ...] = ("thread", "channel", "community")
CACHED_PLACES = 32_768
"""Places whose resolved alignment is kept: about 700 bytes and three objects each (what
places share, their library, bounds and plan, is one object for all of them). Full, it
holds some 23 MB and makes a full garbage collection some 50 ms longer on a 2-CPU host."""
CACHED_COMMUNITIES = 16_384
"""Communities whose library (built-in plus their own layers and profiles) and bounds are
kept."""
CACHED_PLANS = 1024
"""Distinct bounded stacks whose composed plan is kept."""


@dataclass(frozen=True, slots=True)
class Resolved:
    """The alignment in effect in one place, and why.

    Attributes:
        library: built-in layers plus the community's own.
        binding: the binding that applies, or None for the global default.
        profile: the profile name in effect, or None for an explicit layer stack.
        stack: the layers, bottom first: the operator's floor, the community's locks, then
            the selected layers.
        plan: the composed plan.
        warnings: bindings or locks that could not be used (and were skipped).
        bounds: the floor and lock layers in the stack, and who set them.
    """

    library: Library
    binding: Binding | None
    profile: str | None
    stack: tuple[Layer, ...]
    plan: ComposedPlan
    warnings: tuple[str, ...] = field(default=())
    bounds: tuple[Bound, ...] = field(default=())

    def bound(self, layer: str) -> Bound | None:
        """How ``layer`` is bound here (floor or lock), if it is."""
        return next((b for b in self.bounds if b.layer.name == layer), None)

    def source(self) -> str:
        """Where the profile in effect was set, in words."""
        if self.binding is None:
            return "the global default"
        return {
            "thread": "set for this thread",
            "channel": "set for this channel",
            "community": "set for the whole community",
        }[self.binding.level]


@dataclass(frozen=True, slots=True)
class _Community:
    """What every place of one community shares: its library and its bounds."""

    library: Library
    bounds: tuple[Bound, ...]
    warnings: tuple[str, ...]
    """One per lock that cannot be used."""


@dataclass(frozen=True, slots=True)
class _Built:
    """A binding's bounded stack and plan in one library within one set of bounds."""

    library: Library
    bounds: tuple[Bound, ...]
    stack: tuple[Layer, ...]
    plan: ComposedPlan


class ProfileResolver:
    """Resolves the composed plan for a scope from the store and the layer library.

    What it derives is cached, each value tagged with the alignment generation its reads
    began at and reused until a write to that community's alignment comes after it
    (`AlignmentStore.changed_at`). Places that bind the same stack share one composed plan.

    Args:
        alignment: where bindings, locks and community layers are stored.
        library: the built-in layers and profiles.
        default_profile: the profile of places nothing is bound to.
        floor: the operator's floor layers, part of every stack.
        cached_places: places whose resolved alignment is kept (default `CACHED_PLACES`).
        cached_communities: communities whose library and bounds are kept (default
            `CACHED_COMMUNITIES`).
    """

    def __init__(
        self,
        alignment: AlignmentStore,
        library: Library,
        default_profile: str,
        floor: tuple[str, ...] = (),
        *,
        cached_places: int | None = None,
        cached_communities: int | None = None,
    ) -> None:
        self._alignment = alignment
        self._library = library
        self._default = default_profile
        self._floor = tuple(Bound(layer, "floor", "the operator") for layer in library.stack(floor))
        self._plain = _Community(library, self._floor, ())
        """What a community with no layers, profiles or locks of its own shares."""
        self._communities: LRU[tuple[str, str], tuple[int, _Community]] = LRU(
            CACHED_COMMUNITIES if cached_communities is None else cached_communities
        )
        self._resolved: LRU[str, tuple[int, Resolved]] = LRU(
            CACHED_PLACES if cached_places is None else cached_places
        )
        # Keyed by the identity of each layer in the bounded stack; the value holds those
        # layers, so no key's ids can be reused while it is cached.
        self._plans: LRU[tuple[int, ...], tuple[tuple[Layer, ...], ComposedPlan]] = (
            LRU(CACHED_PLANS)
        )
        # What a binding's profile or layers come to in a library within bounds, keyed by
        # the identity of both; the value holds them, so no key's ids can be reused while
        # it is cached. Places bound alike share it without building the stack again.
        self._built: LRU[tuple[int, int, str | None, tuple[str, ...] | None], _Built] = (
            LRU(CACHED_PLANS)
        )

    @property
    def base_library(self) -> Library:
        return self._library

    @property
    def floor(self) -> tuple[Bound, ...]:
        """The operator's floor layers, part of every stack."""
        return self._floor

    def _current(self, platform: str, community: str, generation: int) -> bool:
        """Whether what was derived from reads begun at ``generation`` still holds."""
        return self._alignment.changed_at(platform, community) <= generation

    async def library_for(self, platform: str, community: str) -> Library:
        """The built-in library extended with a community's own layers and profiles."""
        return (await self._community(platform, community)).library

    async def bounds_for(
        self, platform: str, community: str, library: Library | None = None
    ) -> tuple[tuple[Bound, ...], tuple[str, ...]]:
        """The floor and the community's locks, with a warning per lock that cannot be used.

        Args:
            library: where to find the locked layers (default: the community's library).
        """
        shared = await self._community(platform, community)
        if library is None or library is shared.library:
            return shared.bounds, shared.warnings
        return self._bounds(library, await self._alignment.locks(platform, community))

    async def _community(self, platform: str, community: str) -> _Community:
        generation = self._alignment.generation
        cached = self._communities.get((platform, community))
        if cached is not None and self._current(platform, community, cached[0]):
            return cached[1]
        stored = await self._alignment.community_alignment(platform, community)
        return self._keep_community(platform, community, stored, generation)

    def _keep_community(
        self, platform: str, community: str, stored: CommunityAlignment, generation: int
    ) -> _Community:
        """The community's shared part, built from ``stored`` unless one is cached."""
        cached = self._communities.get((platform, community))
        if cached is not None and self._current(platform, community, cached[0]):
            return cached[1]
        if not (stored.layers or stored.profiles or stored.locks):
            shared = self._plain  # most communities: one value for all of them
        else:
            library = self._extend(stored)
            shared = _Community(library, *self._bounds(library, stored.locks))
        self._communities[(platform, community)] = (generation, shared)
        return shared

    def _extend(self, stored: CommunityAlignment) -> Library:
        layers: list[Layer] = []
        for name, source in stored.layers:
            try:
                layers.append(parse_layer(source, f"community layer {name!r}"))
            except LayerFileError as error:
                log.warning("skipping stored layer: %s", error)
        profiles = [
            Profile(name=name, description=description, layers=stack)
            for name, description, stack in stored.profiles
        ]
        if not layers and not profiles:
            return self._library
        return self._library.extended(layers, profiles, origin="this community")

    def _bounds(
        self, library: Library, locks: Iterable[Lock]
    ) -> tuple[tuple[Bound, ...], tuple[str, ...]]:
        bounds = list(self._floor)
        warnings = []
        for lock in locks:
            if lock.layer not in library.layers:
                warnings.append(f"The locked layer {lock.layer!r} no longer exists; a "
                                f"community moderator can /profile unlock {lock.layer}.")
                continue
            bounds.append(Bound(library.layers[lock.layer], "lock", lock.by_name))
        return (tuple(bounds) if len(bounds) > len(self._floor) else self._floor,
                tuple(warnings))

    personal: PersonalLayers | None = None
    """Composes a member's personal layers on top (``bot.personal``); set by the app."""

    async def resolve(self, scope: Scope, member: str | None = None) -> Resolved:
        """The alignment in effect in ``scope``; unusable bindings are skipped with a warning.

        With ``member`` (an author id), that member's personal layers allowed here are on
        top, for their replies only.

        A place not cached costs one query: its bindings and its community's alignment.
        """
        if member is not None and self.personal is not None:
            return await self.personal.apply(await self.resolve(scope), scope, member)
        key = scope.key()
        generation = self._alignment.generation
        cached = self._resolved.get(key)
        if cached is not None and self._current(scope.platform, scope.community, cached[0]):
            return cached[1]
        stored = await self._alignment.place_alignment(scope)
        shared = self._keep_community(scope.platform, scope.community, stored.community,
                                      generation)
        resolved = self._resolve(shared, stored.bindings)
        self._resolved[key] = (generation, resolved)
        return resolved

    def reads(self, scope: Scope, member: str | None = None) -> list[Read]:
        """What `resolve` would read for ``scope`` (and ``member``'s pick) that is not
        cached, as reads to make together with others (`bot.store.reads`)."""
        reads = []
        if member is not None and self.personal is not None:
            pick = self.personal.read(scope, member)
            if pick is not None:
                reads.append(pick)
        key = scope.key()
        generation = self._alignment.generation
        cached = self._resolved.get(key)
        if cached is not None and self._current(scope.platform, scope.community, cached[0]):
            return reads

        def keep(stored: PlaceAlignment) -> None:
            shared = self._keep_community(scope.platform, scope.community, stored.community,
                                          generation)
            self._resolved[key] = (generation, self._resolve(shared, stored.bindings))

        read = self._alignment.place_read(scope, keep)
        if read is not None:
            reads.append(read)
        return reads

    def _resolve(self, shared: _Community, bindings: Mapping[Level, Binding]) -> Resolved:
        library, bounds = shared.library, shared.bounds
        warnings: list[str] = list(shared.warnings)
        for level in LEVEL_ORDER:
            binding = bindings.get(level)
            if binding is None:
                continue
            try:
                return self._build(library, binding, bounds, tuple(warnings))
            except ProfileError as error:
                warnings.append(f"The {level} binding ({binding.describe()}) is unusable: {error}")
        profile = library.profile(self._default)
        try:
            selected = tuple(library.stack(profile.layers))
            stack, plan = self._plan(selected, bounds)
        except ProfileError as error:
            # The default clashes with a lock: the floor and the locks alone still bind.
            warnings.append(f"The default profile {profile.name!r} is unusable here: {error}")
            selected = ()
            stack, plan = self._plan(selected, bounds)
        return Resolved(library, None, profile.name if selected else None,
                        stack, plan, tuple(warnings), bounds)

    def _build(
        self, library: Library, binding: Binding, bounds: tuple[Bound, ...],
        warnings: tuple[str, ...],
    ) -> Resolved:
        key = (id(library), id(bounds), binding.profile, binding.layers)
        built = self._built.get(key)
        if built is None or built.library is not library or built.bounds is not bounds:
            if binding.profile is not None:
                names = library.profile(binding.profile).layers
            else:
                names = binding.layers or ()
            built = _Built(library, bounds, *self._plan(tuple(library.stack(names)), bounds))
            self._built[key] = built
        return Resolved(library, binding, binding.profile, built.stack, built.plan, warnings,
                        bounds)

    def _plan(
        self, selected: tuple[Layer, ...], bounds: tuple[Bound, ...]
    ) -> tuple[tuple[Layer, ...], ComposedPlan]:
        """The bounded stack and its composed plan, shared by every place that has it.

        Raises:
            ProfileError: the bounded stack does not compose.
        """
        stack = bounded_stack(selected, bounds)
        key = tuple(id(layer) for layer in stack)
        cached = self._plans.get(key)
        if cached is not None:
            return cached
        plan = compose_bounded(selected, bounds)
        self._plans[key] = (stack, plan)
        return stack, plan
