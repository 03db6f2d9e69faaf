"""``/layer ...``: community layers written in chat — created, shown, edited, deleted,
their versions listed and rolled back.

A layer's TOML comes in a code block after the command or as an attached ``.toml`` file,
and is validated as a layer file is (each bad field named with what is allowed); nothing
is stored unless it is valid. A change that would break a place using the layer (a
binding, a community profile, a lock) is refused, saying where; so is deleting a layer
that is in use. Every change is a new version, audited.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.commands.context import CommandContext, CommandReply
from bot.commands.handlers import _library
from bot.commands.history import parse_version
from bot.commands.render import list_layers
from bot.commands.render_changes import describe_layer_history, when
from bot.errors import CommandError, LayerFileError, ProfileError
from bot.messages import Command, IncomingMessage
from bot.store.versions import PlacedBinding
from profiles import Layer, Library, compose
from profiles.authoring import layer_from_toml, layer_to_toml, toml_in, valid_name
from profiles.bounds import bounded_stack, compose_bounded
from profiles.library import parse_layer

COMMUNITY_ORIGIN = "this community"
EXAMPLE = ('```toml\ndescription = "Talks like a pirate"\nprompt = "Answer like a friendly '
           'pirate."\n[sampling]\ntemperature = 0.9\n```')


@dataclass(frozen=True)
class Use:
    """A place or definition that uses a layer, and the stack it would compose."""

    where: str
    names: tuple[str, ...] | None
    """The selected layers to compose again; None for a lock (the bounds alone)."""


def source_in(command: Command, message: IncomingMessage) -> str:
    """The layer's TOML: a code block after the command, else an attached ``.toml`` file.

    Raises:
        CommandError: neither was given, or the file could not be read.
    """
    text = command.word("toml")
    if text:
        return toml_in(text)
    files = [file for file in message.attachments if file.name.lower().endswith(".toml")]
    if files:
        file = files[0]
        if file.text is None:
            raise CommandError(file.problem or f"cabot could not read {file.name}.")
        return file.text
    if message.attachments:
        names = ", ".join(file.name for file in message.attachments)
        raise CommandError(f"Attach the layer as a .toml file (the attached {names} is not "
                           "one), or put its TOML in a code block after the command.")
    raise CommandError(
        "Give the layer's TOML in a code block after the command, or attach a .toml file. "
        f"For example:\n/layer create pirate\n{EXAMPLE}\n/layer show base shows a whole layer."
    )


def _name(command: Command) -> str:
    name = (command.word("name") or "").lower()
    if not valid_name(name):
        raise CommandError(f"{name!r} is not a valid layer name: use 1-40 lowercase letters, "
                           "digits, '-' or '_', starting with a letter or digit.")
    return name


def _refuse_builtin(library: Library, name: str) -> None:
    if name in library.layers and library.layer_origin(name) != COMMUNITY_ORIGIN:
        origin = library.layer_origin(name)
        raise CommandError(
            f"'{name}' is a {origin} layer, so it cannot be changed in chat. /layer show "
            f"{name} gives its TOML: create your own copy under another name, e.g. "
            f"/layer create my-{name}."
        )


async def layer_list(ctx: CommandContext, command: Command) -> CommandReply:
    """``/layer list``."""
    return CommandReply(list_layers(await _library(ctx)), True)


async def layer_show(ctx: CommandContext, command: Command) -> CommandReply:
    """``/layer show <name>``: its TOML (as written, for a community layer)."""
    name = (command.word("name") or "").lower()
    library = await _library(ctx)
    layer = library.layer(name)
    origin = library.layer_origin(name)
    scope = ctx.message.scope
    if origin == COMMUNITY_ORIGIN:
        history = await ctx.store.versions.layer_history(scope.platform, scope.community,
                                                         name, limit=1)
        stored = dict(await ctx.store.alignment.custom_layers(scope.platform,
                                                              scope.community))
        source = stored.get(name, layer_to_toml(layer))
        about = (f"v{history[0].number}, by {history[0].change.actor_name} on "
                 f"{when(history[0].change.at)}" if history else "")
        header = f"Layer '{name}' (this community's{', ' + about if about else ''}):"
    else:
        source = layer_to_toml(layer)
        header = f"Layer '{name}' ({origin}; /layer create <new name> with this starts a copy):"
    return CommandReply(f"{header}\n```toml\n{source.rstrip()}\n```", True)


async def layer_create(ctx: CommandContext, command: Command) -> CommandReply:
    """``/layer create <name>`` with the TOML in a code block or an attached file."""
    return await _save(ctx, command, creating=True)


async def layer_edit(ctx: CommandContext, command: Command) -> CommandReply:
    """``/layer edit <name>``: a new version of a community layer."""
    return await _save(ctx, command, creating=False)


async def _save(ctx: CommandContext, command: Command, *, creating: bool) -> CommandReply:
    name = _name(command)
    library = await _library(ctx)
    _refuse_builtin(library, name)
    exists = name in library.layers
    if creating and exists:
        raise CommandError(f"Layer '{name}' already exists in this community; /layer edit "
                           f"{name} changes it (the old version is kept).")
    if not creating and not exists:
        raise CommandError(f"There is no layer '{name}' in this community; /layer create "
                           f"{name} makes one.")
    layer, source = layer_from_toml(source_in(command, ctx.message), name)
    await _check_uses(ctx, library, layer, "changed")
    scope = ctx.message.scope
    number = await ctx.store.versions.save_layer(
        scope.platform, scope.community, name, source, ctx.actor,
        "create" if creating else "edit")
    if creating:
        return CommandReply(
            f"Layer '{name}' is now available in this community (v{number}): "
            f"{layer.description} Try it with /profile preview base {name}, or use it with "
            f"/profile set base {name}.")
    return CommandReply(f"Layer '{name}' is now v{number}; every place using it follows the "
                        f"change. /layer rollback {name} brings v{number - 1} back.")


async def layer_delete(ctx: CommandContext, command: Command) -> CommandReply:
    """``/layer delete <name>``: only when no place uses it."""
    name = _name(command)
    library = await _library(ctx)
    _refuse_builtin(library, name)
    library.layer(name)  # unknown: suggestions
    await _refuse_if_used(ctx, library, name)
    scope = ctx.message.scope
    number = await ctx.store.versions.save_layer(scope.platform, scope.community, name, None,
                                                 ctx.actor, "delete")
    return CommandReply(f"Deleted layer '{name}' (v{number - 1} is kept: /layer rollback "
                        f"{name} brings it back).")


async def layer_history(ctx: CommandContext, command: Command) -> CommandReply:
    """``/layer history <name>``."""
    name = (command.word("name") or "").lower()
    scope = ctx.message.scope
    versions = await ctx.store.versions.layer_history(scope.platform, scope.community, name)
    if versions:
        return CommandReply(describe_layer_history(name, versions), True)
    library = await _library(ctx)
    library.layer(name)  # unknown: suggestions
    return CommandReply(f"Layer '{name}' is {library.layer_origin(name)}: it was not written "
                        "in this community, so it has no versions here.", True)


async def layer_rollback(ctx: CommandContext, command: Command) -> CommandReply:
    """``/layer rollback <name> [version]``: an earlier version (default: the one before)."""
    name = _name(command)
    scope, versions = ctx.message.scope, ctx.store.versions
    history = await versions.layer_history(scope.platform, scope.community, name, limit=1)
    if not history:
        library = await _library(ctx)
        _refuse_builtin(library, name)
        raise CommandError(f"Layer '{name}' was never written in this community, so it has "
                           "no versions.")
    latest = history[0]
    listing = f"/layer history {name}"
    word = command.word("version")
    number = parse_version(word, listing) if word is not None else latest.number - 1
    target = await versions.layer_version(scope.platform, scope.community, name, number)
    if target is None:
        raise CommandError(f"Layer '{name}' has no version {number}; it is at "
                           f"v{latest.number}. {listing} lists its versions.")
    if target.source == latest.source:
        return CommandReply(f"Layer '{name}' already is as v{number} was; nothing changed.",
                            True)
    library = await _library(ctx)
    if target.source is None:
        await _refuse_if_used(ctx, library, name)
    else:
        try:
            layer = parse_layer(target.source, f"layer {name!r} v{number}")
        except LayerFileError as error:
            raise CommandError(f"v{number} of layer '{name}' is no longer a valid layer "
                               f"({error}); nothing changed.") from None
        await _check_uses(ctx, library, layer, "rolled back")
    new = await versions.save_layer(scope.platform, scope.community, name, target.source,
                                    ctx.actor, f"rollback to v{number}")
    state = "deleted, as it was" if target.source is None else "as it was"
    return CommandReply(f"Layer '{name}' is {state} in v{number} (now v{new}).")


async def _stacks(ctx: CommandContext, library: Library) -> list[Use]:
    """Every binding and community profile of this community, with the layers it selects."""
    scope = ctx.message.scope
    platform, community = scope.platform, scope.community
    uses: list[Use] = []
    for placed in await ctx.store.versions.community_bindings(platform, community):
        binding = placed.binding
        if binding.profile is not None:
            profile = library.profiles.get(binding.profile)
            names = profile.layers if profile is not None else ()
            what = f"profile '{binding.profile}'"
        else:
            names = binding.layers or ()
            what = f"layers {', '.join(names)}"
        uses.append(Use(f"{_place(placed)} ({what})", names))
    for profile_name, _, layers in await ctx.store.alignment.custom_profiles(platform,
                                                                             community):
        uses.append(Use(f"the community profile '{profile_name}'", layers))
    return uses


async def _uses(ctx: CommandContext, library: Library, name: str) -> list[Use]:
    """Every place and definition in this community that uses layer ``name``."""
    scope = ctx.message.scope
    platform, community = scope.platform, scope.community
    uses = [use for use in await _stacks(ctx, library) if use.names and name in use.names]
    for lock in await ctx.store.alignment.locks(platform, community):
        if lock.layer == name:
            uses.append(Use(f"the community's locks (locked by {lock.by_name})", None))
    for channel, thread in await ctx.store.versions.allowed_at(platform, community, name):
        place = "the whole community" if not channel else (
            f"thread {thread} of channel {channel}" if thread else f"channel {channel}")
        uses.append(Use(f"the personal layers members may pick in {place}", ()))
    return uses


def _place(placed: PlacedBinding) -> str:
    if not placed.channel:
        return "the whole community"
    if placed.thread:
        return f"thread {placed.thread} of channel {placed.channel}"
    return f"channel {placed.channel}"


async def _refuse_if_used(ctx: CommandContext, library: Library, name: str) -> None:
    uses = await _uses(ctx, library, name)
    if uses:
        raise CommandError(
            f"Layer '{name}' is in use, so it was not deleted. It is used by: "
            + "; ".join(use.where for use in uses)
            + f". Choose other layers there first (a lock: /profile unlock {name})."
        )


async def _check_uses(ctx: CommandContext, library: Library, layer: Layer, doing: str
                      ) -> None:
    """Refuse a new version of ``layer`` under which a place using it would not compose.

    A locked layer is in every stack of the community, so then every binding and profile
    is checked; a stack that did not compose before is not this change's doing.
    """
    candidate = library.extended([layer], origin=COMMUNITY_ORIGIN)
    scope = ctx.message.scope
    bounds, _ = await ctx.resolver.bounds_for(scope.platform, scope.community, candidate)
    old_bounds, _ = await ctx.resolver.bounds_for(scope.platform, scope.community, library)
    try:
        if bounds:
            compose(bounded_stack((), bounds))
    except ProfileError as error:
        raise CommandError(f"Layer '{layer.name}' was not {doing}: the community's locked "
                           f"layers would no longer compose with it ({error}).") from None
    locked = any(bound.layer.name == layer.name for bound in bounds)
    broken = []
    for use in await _stacks(ctx, candidate):
        if use.names is None or not (locked or layer.name in use.names):
            continue
        try:
            compose_bounded(library.stack(use.names), old_bounds)
        except ProfileError:
            continue  # broken already
        try:
            compose_bounded(candidate.stack(use.names), bounds)
        except ProfileError as error:
            broken.append(f"{use.where}: {error}")
    if broken:
        raise CommandError(
            f"Layer '{layer.name}' was not {doing}: with this version, "
            + "; ".join(broken)
            + " Fix the layer, or change those places first."
        )
