"""/layer commands through the router: layers written in chat, validated like files,
versioned and audited, refused when they would break a place that uses them."""

from __future__ import annotations

from typing import Any

from bot.app import App
from bot.messages import Attachment, Scope
from tests.helpers.fake_backend import FakeBackend
from tests.helpers.recording import RecordingAdapter, message

GENERAL = Scope(platform="test", community="guild", channel="general")
PIRATE = """/layer create pirate
```toml
description = "Talks like a pirate"
prompt = "Answer like a friendly pirate."
[sampling]
temperature = 0.9
```"""


async def say(app: App, chat: RecordingAdapter, text: str,
              files: tuple[Attachment, ...] = (), **kwargs: Any) -> str:
    before = len(chat.shown)
    incoming = message(text, **kwargs).model_copy(update={"attachments": files})
    await app.router.handle(chat, incoming)
    return "\n".join(shown.text for shown in chat.shown[before:])


async def mod(app: App, chat: RecordingAdapter, text: str, **kwargs: Any) -> str:
    return await say(app, chat, text, community_moderator=True, author="serena", **kwargs)


async def community_layers(app: App) -> dict[str, str]:
    return dict(await app.store.alignment.custom_layers("test", "guild"))


async def test_a_community_moderator_writes_a_layer_in_a_code_block(
    app: App, chat: RecordingAdapter, backend: FakeBackend
) -> None:
    created = await mod(app, chat, PIRATE)
    assert "Layer 'pirate' is now available in this community (v1)" in created
    assert (await community_layers(app))["pirate"].startswith('name = "pirate"\n')
    listed = await say(app, chat, "/layer list")
    assert "pirate [this community] — Talks like a pirate" in listed
    shown = await say(app, chat, "/layer show pirate")
    assert "this community's, v1, by serena" in shown
    assert 'prompt = "Answer like a friendly pirate."' in shown and "```toml" in shown
    await mod(app, chat, "/profile set base pirate")
    await say(app, chat, "ahoy")
    assert "Answer like a friendly pirate." in backend.requests[-1].messages[0].content
    audit = await say(app, chat, "/profile audit")
    assert "serena: create layer in community: (inherited) → pirate v1" in audit


async def test_an_attached_toml_file_is_a_layer_too(app: App, chat: RecordingAdapter) -> None:
    source = 'description = "From a file"\n[rules]\nbanned = ["arr"]\n'
    created = await mod(app, chat, "/layer create filed",
                        files=(Attachment(name="filed.toml", size=len(source), text=source),))
    assert "Layer 'filed' is now available" in created
    library = await app.resolver.library_for("test", "guild")
    assert library.layer("filed").rules.banned == ("arr",)
    not_toml = await mod(app, chat, "/layer create other",
                         files=(Attachment(name="cat.png", size=3, text=None, problem="x"),))
    assert "Attach the layer as a .toml file (the attached cat.png is not one)" in not_toml
    too_big = await mod(app, chat, "/layer create big", files=(
        Attachment(name="big.toml", size=10**6, problem="big.toml is 1,000,000 bytes"),))
    assert "big.toml is 1,000,000 bytes" in too_big
    nothing = await mod(app, chat, "/layer create empty")
    assert "Give the layer's TOML in a code block" in nothing
    assert set(await community_layers(app)) == {"filed"}


async def test_a_bad_layer_is_refused_with_the_field_and_nothing_is_saved(
    app: App, chat: RecordingAdapter
) -> None:
    refused = await mod(app, chat, "/layer create bad\n```\ndescription = \"x\"\n"
                                   "[sampling]\ntemprature = 0.5\n```")
    assert "layer 'bad': field 'sampling.temprature': unknown field; allowed fields are" in (
        refused)
    named = await mod(app, chat, '/layer create bad\n```\nname = "good"\ndescription = "x"\n```')
    assert "calls the layer 'good'" in named
    syntax = await mod(app, chat, "/layer create bad\n```\ndescription = \n```")
    assert "not valid TOML" in syntax
    assert "is not a valid layer name" in await mod(app, chat, "/layer create Bad!\n```\n```")
    assert await community_layers(app) == {}
    assert await app.store.alignment.audit_log("test", "guild") == []


async def test_built_in_layers_cannot_be_changed_but_can_be_copied(
    app: App, chat: RecordingAdapter
) -> None:
    refused = await mod(app, chat, '/layer edit concise\n```\ndescription = "x"\n```')
    assert "'concise' is a built-in layer, so it cannot be changed in chat" in refused
    assert "built-in layer" in await mod(app, chat, "/layer delete concise")
    shown = await say(app, chat, "/layer show family-friendly")
    assert "Layer 'family-friendly' (built-in;" in shown and 'conflicts_with = ["fiction"]' in (
        shown)
    toml = shown.split("```toml\n", 1)[1].rsplit("```", 1)[0]
    copied = await mod(app, chat, "/layer create gentle\n```\n"
                       + toml.replace('name = "family-friendly"\n', "") + "```")
    assert "Layer 'gentle' is now available" in copied


async def test_only_community_moderators_write_layers(app: App, chat: RecordingAdapter) -> None:
    for command in (PIRATE, "/layer edit pirate\n```\ndescription = \"x\"\n```",
                    "/layer delete pirate", "/layer rollback pirate"):
        refused = await say(app, chat, command, moderator=True)
        assert refused.startswith("Only community moderators"), command
    assert await community_layers(app) == {}


async def test_edit_keeps_the_old_version_and_rollback_brings_it_back(
    app: App, chat: RecordingAdapter
) -> None:
    await mod(app, chat, PIRATE)
    assert "already exists" in await mod(app, chat, PIRATE)
    edited = await mod(app, chat, '/layer edit pirate\n```\ndescription = "A quieter pirate"\n```')
    assert "Layer 'pirate' is now v2" in edited
    assert "There is no layer 'parrot'" in await mod(
        app, chat, '/layer edit parrot\n```\ndescription = "x"\n```')
    history = await say(app, chat, "/layer history pirate")
    assert "v2" in history and "serena: edit" in history and "serena: create" in history
    back = await mod(app, chat, "/layer rollback pirate")
    assert "Layer 'pirate' is as it was in v1 (now v3)" in back
    library = await app.resolver.library_for("test", "guild")
    assert library.layer("pirate").description == "Talks like a pirate"
    audit = [e.action for e in await app.store.alignment.audit_log("test", "guild")]
    assert audit == ["rollback layer", "edit layer", "create layer"]


async def test_a_layer_in_use_is_not_deleted_and_says_where(
    app: App, chat: RecordingAdapter
) -> None:
    await mod(app, chat, PIRATE)
    await mod(app, chat, "/profile set base pirate", channel="ship")
    await mod(app, chat, "/profile define crew base pirate")
    await mod(app, chat, "/profile use crew --community")
    refused = await mod(app, chat, "/layer delete pirate")
    assert "Layer 'pirate' is in use, so it was not deleted" in refused
    assert "channel ship (layers base, pirate)" in refused
    assert "the whole community (profile 'crew')" in refused
    assert "the community profile 'crew'" in refused
    assert "pirate" in await community_layers(app)

    await mod(app, chat, "/profile reset", channel="ship")
    await mod(app, chat, "/profile reset --community")
    await mod(app, chat, "/profile define crew base")
    deleted = await mod(app, chat, "/layer delete pirate")
    assert "Deleted layer 'pirate' (v1 is kept" in deleted
    assert await community_layers(app) == {}
    undeleted = await mod(app, chat, "/layer rollback pirate")
    assert "is as it was in v1" in undeleted and "pirate" in await community_layers(app)


async def test_a_locked_layer_is_in_use_and_an_edit_that_breaks_a_place_is_refused(
    app: App, chat: RecordingAdapter
) -> None:
    await mod(app, chat, PIRATE)
    await mod(app, chat, "/profile lock pirate")
    refused = await mod(app, chat, "/layer delete pirate")
    assert "the community's locks (locked by serena)" in refused
    await mod(app, chat, "/profile set base fiction", channel="stories")
    breaking = await mod(app, chat, '/layer edit pirate\n```\ndescription = "x"\n'
                                    'conflicts_with = ["fiction"]\n```')
    assert "Layer 'pirate' was not changed: with this version, channel stories" in breaking
    assert "conflict" in breaking
    library = await app.resolver.library_for("test", "guild")
    assert library.layer("pirate").conflicts_with == ()
