"""Which profile applies where: thread, then channel, then community, then the default."""

from __future__ import annotations

import pytest

import bot.resolution
from bot.messages import Scope
from bot.resolution import ProfileResolver
from bot.store import Actor, Store
from profiles import load_builtin_library

MOD = Actor(id="1", name="mod")
CHANNEL = Scope(platform="discord", community="g", channel="c")
THREAD = CHANNEL.model_copy(update={"thread": "t"})
OTHER = Scope(platform="discord", community="g", channel="other")


@pytest.fixture
def resolver(store: Store) -> ProfileResolver:
    return ProfileResolver(store.alignment, load_builtin_library(), "default")


async def test_nothing_bound_gives_the_global_default(resolver: ProfileResolver) -> None:
    resolved = await resolver.resolve(THREAD)
    assert resolved.profile == "default"
    assert resolved.binding is None
    assert resolved.source() == "the global default"


async def test_channel_without_binding_inherits_community(
    store: Store, resolver: ProfileResolver
) -> None:
    await store.alignment.bind(CHANNEL, "community", MOD, profile="researcher")
    assert (await resolver.resolve(OTHER)).profile == "researcher"
    assert (await resolver.resolve(THREAD)).source() == "set for the whole community"


async def test_channel_beats_community_and_thread_beats_channel(
    store: Store, resolver: ProfileResolver
) -> None:
    await store.alignment.bind(CHANNEL, "community", MOD, profile="researcher")
    await store.alignment.bind(CHANNEL, "channel", MOD, profile="kids")
    assert (await resolver.resolve(CHANNEL)).profile == "kids"
    assert (await resolver.resolve(THREAD)).profile == "kids"  # the thread inherits
    await store.alignment.bind(THREAD, "thread", MOD, layers=("base", "fiction"))
    resolved = await resolver.resolve(THREAD)
    assert resolved.profile is None
    assert resolved.plan.layers == ("base", "fiction")
    assert (await resolver.resolve(CHANNEL)).profile == "kids"
    assert (await resolver.resolve(OTHER)).profile == "researcher"


async def test_unusable_binding_falls_through_with_a_warning(
    store: Store, resolver: ProfileResolver
) -> None:
    await store.alignment.bind(CHANNEL, "community", MOD, profile="kids")
    await store.alignment.bind(CHANNEL, "channel", MOD, profile="deleted-profile")
    resolved = await resolver.resolve(CHANNEL)
    assert resolved.profile == "kids"
    assert "deleted-profile" in resolved.warnings[0]


async def test_community_profiles_and_layers_are_visible_only_there(
    store: Store, resolver: ProfileResolver
) -> None:
    await store.alignment.save_custom_layer(
        "discord", "g", "pirate",
        'name = "pirate"\ndescription = "Arr."\nprompt = "Talk like a pirate."\n', MOD,
    )
    await store.alignment.save_custom_profile(
        "discord", "g", "pirates", ("base", "pirate"), "", MOD
    )
    await store.alignment.bind(CHANNEL, "channel", MOD, profile="pirates")
    resolved = await resolver.resolve(CHANNEL)
    assert "Talk like a pirate." in resolved.plan.system_prompt
    assert resolved.library.layer_origin("pirate") == "this community"
    elsewhere = await resolver.library_for("discord", "another-guild")
    assert "pirates" not in elsewhere.profiles and "pirate" not in elsewhere.layers


async def test_memory_and_reply_mode_writes_keep_the_cache_and_a_bind_clears_it(
    store: Store, resolver: ProfileResolver
) -> None:
    first = await resolver.resolve(CHANNEL)
    library = await resolver.library_for("discord", "g")
    await store.conversations.append_exchange(CHANNEL, [("user", "hi")], keep=5)
    await store.conversations.clear_history(CHANNEL)
    await store.conversations.set_reply_mode(CHANNEL, "always", MOD)
    assert await resolver.resolve(CHANNEL) is first
    assert await resolver.library_for("discord", "g") is library
    await store.alignment.bind(CHANNEL, "channel", MOD, profile="kids")
    resolved = await resolver.resolve(CHANNEL)
    assert resolved is not first and resolved.profile == "kids"


async def test_the_cache_keeps_the_places_used_most_recently(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.resolution, "CACHED_PLACES", 3)
    resolver = ProfileResolver(store.alignment, load_builtin_library(), "default")
    places = [CHANNEL.model_copy(update={"channel": str(i)}) for i in range(4)]
    kept = await resolver.resolve(places[0])
    dropped = await resolver.resolve(places[1])
    for place in places[2:]:
        assert await resolver.resolve(places[0]) is kept  # used again, so kept
        await resolver.resolve(place)
    assert await resolver.resolve(places[0]) is kept
    assert await resolver.resolve(places[1]) is not dropped
