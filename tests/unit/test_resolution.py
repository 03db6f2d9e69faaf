"""Which profile applies where: thread, then channel, then community, then the default."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.messages import Scope
from bot.resolution import ProfileResolver
from bot.store import Actor, Store
from profiles import load_builtin_library

MOD = Actor(id="1", name="mod")
CHANNEL = Scope(platform="discord", community="g", channel="c")
THREAD = CHANNEL.model_copy(update={"thread": "t"})
OTHER = Scope(platform="discord", community="g", channel="other")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(tmp_path / "r.db") as store:
        yield store


@pytest.fixture
def resolver(store: Store) -> ProfileResolver:
    return ProfileResolver(store, load_builtin_library(), "default")


async def test_nothing_bound_gives_the_global_default(resolver: ProfileResolver) -> None:
    resolved = await resolver.resolve(THREAD)
    assert resolved.profile == "default"
    assert resolved.binding is None
    assert resolved.source() == "the global default"


async def test_channel_without_binding_inherits_community(
    store: Store, resolver: ProfileResolver
) -> None:
    await store.bind(CHANNEL, "community", MOD, profile="researcher")
    assert (await resolver.resolve(OTHER)).profile == "researcher"
    assert (await resolver.resolve(THREAD)).source() == "set for the whole community"


async def test_channel_beats_community_and_thread_beats_channel(
    store: Store, resolver: ProfileResolver
) -> None:
    await store.bind(CHANNEL, "community", MOD, profile="researcher")
    await store.bind(CHANNEL, "channel", MOD, profile="kids")
    assert (await resolver.resolve(CHANNEL)).profile == "kids"
    assert (await resolver.resolve(THREAD)).profile == "kids"  # the thread inherits
    await store.bind(THREAD, "thread", MOD, layers=("base", "fiction"))
    resolved = await resolver.resolve(THREAD)
    assert resolved.profile is None
    assert resolved.plan.layers == ("base", "fiction")
    assert (await resolver.resolve(CHANNEL)).profile == "kids"
    assert (await resolver.resolve(OTHER)).profile == "researcher"


async def test_unusable_binding_falls_through_with_a_warning(
    store: Store, resolver: ProfileResolver
) -> None:
    await store.bind(CHANNEL, "community", MOD, profile="kids")
    await store.bind(CHANNEL, "channel", MOD, profile="deleted-profile")
    resolved = await resolver.resolve(CHANNEL)
    assert resolved.profile == "kids"
    assert "deleted-profile" in resolved.warnings[0]


async def test_community_profiles_and_layers_are_visible_only_there(
    store: Store, resolver: ProfileResolver
) -> None:
    await store.save_custom_layer(
        "discord", "g", "pirate",
        'name = "pirate"\ndescription = "Arr."\nprompt = "Talk like a pirate."\n', MOD,
    )
    await store.save_custom_profile("discord", "g", "pirates", ("base", "pirate"), "", MOD)
    await store.bind(CHANNEL, "channel", MOD, profile="pirates")
    resolved = await resolver.resolve(CHANNEL)
    assert "Talk like a pirate." in resolved.plan.system_prompt
    assert resolved.library.layer_origin("pirate") == "this community"
    elsewhere = await resolver.library_for("discord", "another-guild")
    assert "pirates" not in elsewhere.profiles and "pirate" not in elsewhere.layers
