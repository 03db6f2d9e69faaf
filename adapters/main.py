"""The ``cabot`` command line, and the composition root: where everything is built.

``main()`` parses the command line, builds the core's settings once and runs a subcommand.
``cabot run`` wires the bot: the App (store, engine, queue, router), then an adapter for
each platform whose token is set, each from its own settings (``CABOT_DISCORD_*``,
``CABOT_TELEGRAM_*``), or the console when none is. Logging is configured here and
nowhere else. ``python -m adapters`` and the ``cabot`` script both run ``main()``; the
offline subcommands (``layers``, ``profiles``, ``explain``) are in
``adapters.library_commands``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from adapters.console import ConsoleAdapter
from adapters.library_commands import explain_command, library_command, load_library
from adapters.package_commands import (
    add_card_options,
    add_parsers,
    import_card_command,
    package_command,
    probes_command,
)
from bot.adapter import Adapter
from bot.app import App, freeze_start_up_objects
from bot.errors import CabotError, ConfigError
from bot.reply import ReplyStats
from bot.settings import Settings
from bot.store import Actor, Store
from profiles import Library, compose

if TYPE_CHECKING:  # the platform SDKs are imported only when a platform is used
    from adapters.discord import DiscordSettings
    from adapters.telegram import TelegramSettings

log = logging.getLogger(__name__)

AnySettings = TypeVar("AnySettings", bound=BaseSettings)


def load_settings(model: type[AnySettings]) -> AnySettings:
    """``model`` from the environment and ``.env``.

    Raises:
        ConfigError: a value is invalid; the message names its variable.
    """
    try:
        return model()
    except ValidationError as error:
        prefix = model.model_config.get("env_prefix") or ""
        problems = "; ".join(
            f"{prefix}{'_'.join(str(p) for p in item['loc']).upper()}: {item['msg']}"
            for item in error.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None


def configure_logging(level: str) -> None:
    """Log to stderr; never let HTTP client logs print URLs (the Telegram token is in them)."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "httpcore", "telegram.ext.Updater", "discord.gateway"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def platform_adapters(
    app: App, discord: DiscordSettings, telegram: TelegramSettings
) -> list[Adapter]:
    """An adapter for each platform whose token is set."""
    adapters: list[Adapter] = []
    if discord.token is not None:
        from adapters.discord import DiscordAdapter

        # Autocomplete offers each community's own profiles and layers too.
        adapters.append(DiscordAdapter(discord, library=app.resolver.library_for,
                                       layers_dir=app.settings.layers_dir))
    if telegram.token is not None:
        from adapters.telegram import TelegramAdapter

        adapters.append(TelegramAdapter(telegram))
    return adapters


async def serve(settings: Settings, discord: DiscordSettings, telegram: TelegramSettings
                ) -> None:
    """``cabot run``: every platform with a token (the console when none) until stopped."""
    app = App(settings)
    adapters = platform_adapters(app, discord, telegram)
    console: ConsoleAdapter | None = None
    if not adapters:
        console = ConsoleAdapter(settle=app.router.drain)
        adapters = [console]
    try:
        started = time.monotonic()
        await app.start(adapters)
        freeze_start_up_objects()
        log.info("cabot is running (%.1f s to start)", time.monotonic() - started)
        if console is not None:
            await console.run()
        else:
            await until_stopped(app, settings.shutdown_grace)
    finally:
        await app.stop()


async def until_stopped(app: App, grace: float) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully; a second signal stops at once.

    The graceful path stops taking messages, lets replies in progress finish for up to
    ``grace`` seconds (their final text delivered), then stops everything.
    """
    signals = asyncio.Queue[int]()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, signals.put_nowait, sig)
    received = await signals.get()
    log.info("%s: finishing replies in progress (up to %.0f s), then stopping",
             signal.Signals(received).name, grace)
    shutdown = asyncio.create_task(app.shutdown(grace))
    second = asyncio.create_task(signals.get())
    done, _ = await asyncio.wait({shutdown, second}, return_when=asyncio.FIRST_COMPLETED)
    if second in done:
        log.warning("second signal: stopping at once")
        shutdown.cancel()
        await asyncio.gather(shutdown, return_exceptions=True)
    else:
        second.cancel()
        await shutdown


async def ask(settings: Settings, library: Library, profile: str | None,
              layers: Sequence[str], message: str, stats: bool = False) -> None:
    """``cabot ask``: one streamed reply on stdout, with a throw-away database."""
    store = Store(":memory:")
    app = App(settings, store=store, library=library)
    # Only the reply's text goes to stdout; notices (queue, truncation) to stderr.
    console = ConsoleAdapter(settle=app.router.drain, bare=True, notices=sys.stderr)
    try:
        await app.start([console])
        actor = Actor(id="cli", name="cli")
        if layers:
            compose(library.stack(layers))
            await store.alignment.bind(console.scope, "channel", actor, layers=tuple(layers))
        elif profile is not None:
            compose(library.stack(library.profile(profile).layers))
            await store.alignment.bind(console.scope, "channel", actor, profile=profile)
        replies: list[ReplyStats] = []
        app.router.observe(lambda _message, reply: replies.append(reply))
        await console.say(message)
        if stats and replies:
            print(replies[-1].describe(), file=sys.stderr)
    finally:
        await app.stop()


def build_parser() -> argparse.ArgumentParser:
    """The ``cabot`` command line: run, layers, profiles, explain, ask, package, probes."""
    parser = argparse.ArgumentParser(
        prog="cabot", description="cabot, the composable alignment bot."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run every configured adapter (the console when none)")
    for name in ("layers", "profiles"):
        p = sub.add_parser(name, help=f"list, show or validate {name}")
        actions = ("list", "show", "validate", *(("import-card",) if name == "layers" else ()))
        p.add_argument("action", nargs="?", choices=actions, default="list")
        p.add_argument("names", nargs="*", help="names to show, or files to validate "
                       "(import-card: a SillyTavern character card, JSON or PNG)")
        p.add_argument("--layers-dir", type=Path, help="extra layer and profile files")
        if name == "layers":
            add_card_options(p)
    p = sub.add_parser("explain", help="show what a profile tells the model, with provenance")
    p.add_argument("profile")
    p.add_argument("--layers-dir", type=Path)
    p = sub.add_parser("ask", help="print one streamed reply and exit")
    p.add_argument("message")
    p.add_argument("--profile", help="the profile to use (default: the default profile)")
    p.add_argument("--layer", action="append", default=[], help="a layer (repeat to stack)")
    p.add_argument("--layers-dir", type=Path)
    p.add_argument("--stats", action="store_true",
                   help="print time to first text and pieces per second to stderr")
    add_parsers(sub)  # package export|import|validate, probes
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``cabot`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(Settings)
        configure_logging(settings.log_level if args.command == "run" else "WARNING")
        if args.command == "run":
            from adapters.discord import DiscordSettings
            from adapters.telegram import TelegramSettings

            discord, telegram = load_settings(DiscordSettings), load_settings(TelegramSettings)
            asyncio.run(serve(settings, discord, telegram))
            return 0
        if args.command == "layers" and args.action == "import-card":
            return import_card_command(args, settings)
        if args.command in ("layers", "profiles"):
            return library_command(args, settings)
        if args.command == "package":
            return package_command(args, settings)
        if args.command == "probes":
            return probes_command(args, settings)
        if args.command == "explain":
            return explain_command(args, settings)
        library = load_library(args.layers_dir or settings.layers_dir)
        asyncio.run(ask(settings, library, args.profile, args.layer, args.message, args.stats))
        return 0
    except CabotError as error:
        print(f"cabot: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
