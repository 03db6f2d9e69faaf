"""``/layer import``: a layer package or a character card, attached, into the community.

The attached file is a package (TOML with a ``[package]`` table, ``profiles.packages``)
or a SillyTavern character card (JSON, or PNG with the card in a text chunk,
``profiles.cards``; a card becomes a one-layer import). What the import would change is
planned first (``plan_import``): a layer or profile of the same name with a different
content is never replaced unless the moderator says ``replace``, or gives it a new name
(``old=new``); a built-in layer or profile is never replaced, only imported beside it
under a new name. A package naming layers nobody has is refused with their names. Each
layer and profile imported is stored, audited and versioned like one written with
``/layer create``, and the import itself is audited with the package's name, version and
content hash.
"""

from __future__ import annotations

import time

from bot.commands.context import CommandContext, CommandReply
from bot.errors import CommandError
from bot.messages import Attachment, Command
from bot.store.alignment import record_audit
from profiles import Layer
from profiles.cards import PNG_SIGNATURE, card_layer, read_card
from profiles.errors import PackageError
from profiles.packages import (
    ImportPlan,
    Package,
    PackageInfo,
    check_complete,
    layer_source,
    parse_package,
    parse_renames,
    plan_import,
)

REPLACE = "replace"


def _file(ctx: CommandContext) -> Attachment:
    files = list(ctx.message.attachments)
    if not files:
        raise CommandError("Attach the file to /layer import: a cabot package (.toml) or a "
                           "SillyTavern character card (.json or .png).")
    file = files[0]
    if file.data is None and file.text is None:
        raise CommandError(file.problem or f"cabot could not read {file.name}.")
    return file


def _content(file: Attachment) -> bytes:
    if file.data is not None:
        return file.data
    return (file.text or "").encode("utf-8")


def _is_card(name: str, data: bytes) -> bool:
    if data.startswith(PNG_SIGNATURE):
        return True
    head = data.lstrip()[:1]
    return name.lower().endswith(".json") or head == b"{"


def _read(file: Attachment) -> tuple[Package, str]:
    """The file as a package, and a report of how it was read."""
    data = _content(file)
    if _is_card(file.name, data):
        imported = card_layer(read_card(data, file.name))
        layer = imported.layer
        info = PackageInfo(name=layer.name, version=layer.version,
                           description=layer.description)
        return Package(info, (layer,)), imported.report()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PackageError(f"{file.name} is neither a cabot package nor a character card."
                           ) from None
    package = parse_package(text, file.name)
    hashed = (f"sha256 {package.info.sha256[:12]}…" if package.info.sha256 else
              "no content hash")
    return package, f"Package {package.describe()} ({hashed})."


async def layer_import(ctx: CommandContext, command: Command) -> CommandReply:
    """``/layer import [replace] [old=new ...]`` with a package or card attached."""
    options = command.words("options")
    replace = REPLACE in (word.lower() for word in options)
    renames = parse_renames(word for word in options if word.lower() != REPLACE)
    file = _file(ctx)
    package, how = _read(file)
    scope = ctx.message.scope
    library = await ctx.resolver.library_for(scope.platform, scope.community)
    check_complete(package, library.layers, file.name)
    plan = plan_import(package, library, renames, builtin=ctx.resolver.base_library)
    lines = [how, plan.report()]
    builtin = [item for item in plan.conflicts if item.builtin]
    if builtin:
        names = ", ".join(item.name for item in builtin)
        example = builtin[0].name
        lines.append(f"Nothing was imported: {names} {'is' if len(builtin) == 1 else 'are'} "
                     f"built in and cannot be replaced here. Import under a new name, e.g. "
                     f"/layer import {example}={example}-2 (with the file attached again).")
        return CommandReply("\n".join(lines), ephemeral=True)
    if plan.conflicts and not replace:
        lines.append(f"Nothing was imported: {len(plan.conflicts)} would replace a layer or "
                     "profile of this community that differs (above). Attach the file again "
                     "with /layer import replace to replace them (their old versions are "
                     "kept), or /layer import old=new to import them under new names.")
        return CommandReply("\n".join(lines), ephemeral=True)
    written = await _store(ctx, plan)
    if not written:
        lines.append("Everything in it is already here; nothing changed.")
        return CommandReply("\n".join(lines), ephemeral=True)
    lines.append(f"Imported into this community: {', '.join(written)}.")
    if any(p.probes for p in plan.profiles):
        lines.append("Note: a community profile keeps no probes of its own; its layers' "
                     "probes still run when a place switches to it.")
    return CommandReply("\n".join(lines))


async def _store(ctx: CommandContext, plan: ImportPlan) -> list[str]:
    scope = ctx.message.scope
    alignment = ctx.store.alignment
    written = []
    for model in plan.writes:
        if isinstance(model, Layer):
            await alignment.save_custom_layer(scope.platform, scope.community, model.name,
                                              layer_source(model), ctx.actor)
            written.append(f"layer {model.name}")
        else:
            await alignment.save_custom_profile(
                scope.platform, scope.community, model.name, model.layers,
                model.description or f"From package {plan.package.info.name}", ctx.actor)
            written.append(f"profile {model.name}")
    if written:
        info = plan.package.info
        async with ctx.store.database.transaction(durable=True) as db:
            await record_audit(
                db, time.time(), (scope.platform, scope.community, "", ""),
                ctx.actor, "import package", None,
                f"{info.name} {info.version}"
                + (f" sha256:{info.sha256}" if info.sha256 else "") + f": {', '.join(written)}")
    return written
