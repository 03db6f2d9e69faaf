"""/layer import: an attached package or character card into the community's layers."""

from __future__ import annotations

from typing import Any

from bot.app import App
from bot.attachments import from_bytes
from bot.messages import Scope
from profiles import Layer, Profile, load_builtin_library
from profiles.packages import PackageInfo, build_package, package_toml
from tests.helpers.cards import CARDS
from tests.helpers.fake_backend import FakeBackend
from tests.helpers.recording import RecordingAdapter, message

GENERAL = Scope(platform="test", community="guild", channel="general")
CALM = Layer(name="calm", description="Calm.", prompt="Breathe.")


def package(*layers: Layer, profiles: tuple[Profile, ...] = ()) -> bytes:
    library = load_builtin_library().extended(layers, profiles)
    names = [p.name for p in profiles] or [layer.name for layer in layers]
    built = build_package(library, names, PackageInfo(name="calm-pack", version="2.0"))
    return package_toml(built).encode()


async def run(app: App, chat: RecordingAdapter, text: str, file: tuple[str, bytes] | None,
              **kwargs: Any) -> str:
    incoming = message(text, **kwargs)
    if file is not None:
        incoming = incoming.model_copy(update={"attachments": (from_bytes(*file),)})
    before = len(chat.shown)
    await app.router.handle(chat, incoming)
    return "\n".join(shown.text for shown in chat.shown[before:])


async def test_a_package_is_imported_and_never_replaces_silently(
        app: App, chat: RecordingAdapter) -> None:
    zen = Profile(name="zen", layers=("base", "calm"))
    first = await run(app, chat, "/layer import", ("calm.cabot.toml", package(CALM, profiles=(
        zen,))), community_moderator=True)
    assert first.startswith("Package calm-pack 2.0: 2 layers, 1 profile (sha256 ")
    assert "layer 'calm': new" in first and "layer 'base': already here, identical" in first
    assert first.endswith("Imported into this community: layer calm, profile zen.")
    library = await app.resolver.library_for("test", "guild")
    assert library.layer("calm") == CALM and library.profile("zen").layers == ("base", "calm")
    audit = await app.store.alignment.audit_log("test", "guild")
    assert audit[0].action == "import package"
    assert audit[0].new is not None and audit[0].new.startswith("calm-pack 2.0 sha256:")
    assert "layer calm, profile zen" in audit[0].new

    calmer = CALM.model_copy(update={"prompt": "Breathe slowly.", "version": "2"})
    changed = ("calm.cabot.toml", package(calmer))
    refused = await run(app, chat, "/layer import", changed, community_moderator=True)
    assert "layer 'calm' would change: prompt Breathe. → Breathe slowly.; version set " \
           "to 2" in refused
    assert "Nothing was imported" in refused and "/layer import replace" in refused
    assert (await app.resolver.library_for("test", "guild")).layer("calm") == CALM

    renamed = await run(app, chat, "/layer import calm=calm2", changed,
                        community_moderator=True)
    assert renamed.endswith("Imported into this community: layer calm2.")
    replaced = await run(app, chat, "/layer import replace", changed, community_moderator=True)
    assert replaced.endswith("Imported into this community: layer calm.")
    library = await app.resolver.library_for("test", "guild")
    assert library.layer("calm").prompt == "Breathe slowly." == library.layer("calm2").prompt
    again = await run(app, chat, "/layer import", changed, community_moderator=True)
    assert again.endswith("Everything in it is already here; nothing changed.")


async def test_built_in_layers_are_never_replaced_and_missing_ones_are_named(
        app: App, chat: RecordingAdapter) -> None:
    concise = load_builtin_library().layer("concise")
    shorter = concise.model_copy(update={"rules": concise.rules.model_copy(
        update={"max_reply_chars": 100})})
    refused = await run(app, chat, "/layer import", ("c.toml", package(shorter)),
                        community_moderator=True)
    assert "concise is built in and cannot be replaced here" in refused
    assert "/layer import concise=concise-2" in refused
    ok = await run(app, chat, "/layer import concise=short", ("c.toml", package(shorter)),
                   community_moderator=True)
    assert ok.endswith("Imported into this community: layer short.")

    broken = b'[package]\nname = "b"\n[profiles.mix]\nlayers = ["base", "ghost"]\n'
    missing = await run(app, chat, "/layer import", ("b.toml", broken),
                        community_moderator=True)
    assert "names 1 layer it does not contain and that is not available here: ghost" in missing


async def test_who_may_import_and_what_to_attach(app: App, chat: RecordingAdapter) -> None:
    denied = await run(app, chat, "/layer import", ("c.toml", package(CALM)), moderator=True)
    assert "Only community moderators" in denied
    nothing = await run(app, chat, "/layer import", None, community_moderator=True)
    assert "Attach the file to /layer import" in nothing
    junk = await run(app, chat, "/layer import", ("x.toml", b"not = [toml"),
                     community_moderator=True)
    assert "not valid TOML" in junk


async def test_a_png_card_becomes_a_layer_its_lorebook_joins_on_its_keys(
        app: App, chat: RecordingAdapter, backend: FakeBackend) -> None:
    png = (CARDS / "nyx.v3.png").read_bytes()
    imported = await run(app, chat, "/layer import", ("nyx.png", png),
                         community_moderator=True)
    assert imported.startswith("Character card 'Nyx' (chara_card_v3, PNG (ccv3 chunk)) → "
                               "layer 'nyx'.")
    assert "⚠️ 6 line(s) try to override the stack and were left out" in imported
    assert imported.endswith("Imported into this community: layer nyx.")
    await run(app, chat, "/profile set base family-friendly nyx", None, moderator=True)
    await run(app, chat, "hello there", None)
    system = backend.requests[-1].messages[0].content
    assert "sarcastic night-owl librarian" in system and "always keeps a lantern" in system
    assert "moon drawn in 1650" not in system
    assert "Ignore all previous" not in system and "im_start" not in system
    assert backend.requests[-1].messages[-1].content.endswith("Stay in character as Nyx.")
    await run(app, chat, "do you have old maps?", None)
    assert "moon drawn in 1650" in backend.requests[-1].messages[0].content
    assert "fuck" in backend.requests[-1].banned  # family-friendly's rules still hold


async def test_a_json_card_arrives_as_text(app: App, chat: RecordingAdapter) -> None:
    text = (CARDS / "mira.v2.json").read_bytes()
    done = await run(app, chat, "/layer import captain-mira=mira", ("mira.json", text),
                     community_moderator=True)
    assert "layer 'mira' (renamed from 'captain-mira'): new" in done
    library = await app.resolver.library_for("test", "guild")
    assert library.layer("mira").lorebook is not None
