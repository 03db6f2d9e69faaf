"""Which stack of layers applies where: thread, then channel, then community, then default."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from cachetools import LRUCache

from bot.errors import LayerFileError, ProfileError
from bot.messages import Scope
from bot.store import AlignmentStore, Binding, Level
from profiles import ComposedPlan, Layer, Library, Profile
from profiles.bounds import Bound, bounded_stack, compose_bounded
from profiles.library import parse_layer

log = logging.getLogger(__name__)

LEVEL_ORDER: tuple[Level, ...] = ("thread", "channel", "community")
CACHED_COMMUNITIES = 1024
"""Communities whose library (built-in plus their own layers and profiles) is kept."""
CACHED_PLACES = 4096
"""Places whose resolved alignment is kept."""


@dataclass(frozen=True)
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


class ProfileResolver:
    """Resolves the composed plan for a scope from the store and the layer library."""

    def __init__(
        self,
        alignment: AlignmentStore,
        library: Library,
        default_profile: str,
        floor: tuple[str, ...] = (),
    ) -> None:
        self._alignment = alignment
        self._library = library
        self._default = default_profile
        self._floor = tuple(Bound(layer, "floor", "the operator") for layer in library.stack(floor))
        # Derived data, each tagged with the alignment generation it was derived from and
        # reused until that generation changes.
        self._libraries: LRUCache[tuple[str, str], tuple[int, Library]] = LRUCache(
            CACHED_COMMUNITIES
        )
        self._resolved: LRUCache[str, tuple[int, Resolved]] = LRUCache(CACHED_PLACES)

    @property
    def base_library(self) -> Library:
        return self._library

    async def library_for(self, platform: str, community: str) -> Library:
        """The built-in library extended with a community's own layers and profiles."""
        generation = self._alignment.generation
        cached = self._libraries.get((platform, community))
        if cached is not None and cached[0] == generation:
            return cached[1]
        library = await self._load_library(platform, community)
        self._libraries[(platform, community)] = (generation, library)
        return library

    async def _load_library(self, platform: str, community: str) -> Library:
        layers: list[Layer] = []
        for name, source in await self._alignment.custom_layers(platform, community):
            try:
                layers.append(parse_layer(source, f"community layer {name!r}"))
            except LayerFileError as error:
                log.warning("skipping stored layer: %s", error)
        stored = await self._alignment.custom_profiles(platform, community)
        profiles = [
            Profile(name=name, description=description, layers=stack)
            for name, description, stack in stored
        ]
        if not layers and not profiles:
            return self._library
        return self._library.extended(layers, profiles, origin="this community")

    @property
    def floor(self) -> tuple[Bound, ...]:
        """The operator's floor layers, part of every stack."""
        return self._floor

    async def bounds_for(
        self, platform: str, community: str, library: Library | None = None
    ) -> tuple[tuple[Bound, ...], tuple[str, ...]]:
        """The floor and the community's locks, with a warning per lock that cannot be used."""
        if library is None:
            library = await self.library_for(platform, community)
        bounds = list(self._floor)
        warnings = []
        for lock in await self._alignment.locks(platform, community):
            if lock.layer not in library.layers:
                warnings.append(f"The locked layer {lock.layer!r} no longer exists; a "
                                f"community moderator can /profile unlock {lock.layer}.")
                continue
            bounds.append(Bound(library.layers[lock.layer], "lock", lock.by_name))
        return tuple(bounds), tuple(warnings)

    async def resolve(self, scope: Scope) -> Resolved:
        """The alignment in effect in ``scope``; unusable bindings are skipped with a warning."""
        generation = self._alignment.generation
        cached = self._resolved.get(scope.key())
        if cached is not None and cached[0] == generation:
            return cached[1]
        resolved = await self._resolve(scope)
        self._resolved[scope.key()] = (generation, resolved)
        return resolved

    async def _resolve(self, scope: Scope) -> Resolved:
        library = await self.library_for(scope.platform, scope.community)
        bounds, lock_warnings = await self.bounds_for(scope.platform, scope.community, library)
        bindings = await self._alignment.bindings_for(scope)
        warnings: list[str] = list(lock_warnings)
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
            plan = compose_bounded(selected, bounds)
        except ProfileError as error:
            # The default clashes with a lock: the floor and the locks alone still bind.
            warnings.append(f"The default profile {profile.name!r} is unusable here: {error}")
            selected = ()
            plan = compose_bounded(selected, bounds)
        return Resolved(library, None, profile.name if selected else None,
                        bounded_stack(selected, bounds), plan, tuple(warnings), bounds)

    @staticmethod
    def _build(
        library: Library, binding: Binding, bounds: tuple[Bound, ...], warnings: tuple[str, ...]
    ) -> Resolved:
        if binding.profile is not None:
            profile_name: str | None = binding.profile
            names = library.profile(binding.profile).layers
        else:
            profile_name = None
            names = binding.layers or ()
        selected = tuple(library.stack(names))
        return Resolved(library, binding, profile_name, bounded_stack(selected, bounds),
                        compose_bounded(selected, bounds), warnings, bounds)
