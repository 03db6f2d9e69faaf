"""The ``cabot`` command line: run the bot, inspect layers and profiles, ask one question."""

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

from pydantic import ValidationError

from adapters.console import ConsoleAdapter
from bot.adapter import Adapter
from bot.app import App
from bot.commands import explain_plan
from bot.errors import CabotError
from bot.settings import Settings
from bot.store import Actor, Store
from profiles import Library, compose, load_builtin_library
from profiles.library import parse_layer, parse_profiles

log = logging.getLogger(__name__)


def configure_logging(level: str) -> None:
    """Log to stderr; never let HTTP client logs print URLs (the Telegram token is in them)."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "httpcore", "telegram.ext.Updater", "discord.gateway"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def platform_adapters(settings: Settings, app: App | None = None) -> list[Adapter]:
    """An adapter for each platform whose token is set."""
    adapters: list[Adapter] = []
    if settings.discord_token is not None:
        from adapters.discord import DiscordAdapter

        # Autocomplete offers each community's own profiles and layers too.
        library = app.resolver.library_for if app is not None else None
        adapters.append(DiscordAdapter(settings, library=library))
    if settings.telegram_token is not None:
        from adapters.telegram import TelegramAdapter

        adapters.append(TelegramAdapter(settings))
    return adapters


async def _run(settings: Settings) -> None:
    app = App(settings)
    adapters = platform_adapters(settings, app)
    console: ConsoleAdapter | None = None
    if not adapters:
        console = ConsoleAdapter(settle=app.router.drain)
        adapters = [console]
    try:
        started = time.monotonic()
        await app.start(adapters)
        log.info("cabot is running (%.1f s to start)", time.monotonic() - started)
        if console is not None:
            await console.run()
        else:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError):
                    loop.add_signal_handler(sig, stop.set)
            await stop.wait()
    finally:
        await app.stop()


async def _ask(settings: Settings, library: Library, profile: str | None,
               layers: Sequence[str], message: str, stats: bool = False) -> None:
    store = Store(":memory:")
    app = App(settings, store=store, library=library)
    # Only the reply's text goes to stdout; notices (queue, truncation) to stderr.
    console = ConsoleAdapter(settle=app.router.drain, bare=True, notices=sys.stderr)
    try:
        await app.start([console])
        actor = Actor(id="cli", name="cli")
        if layers:
            compose(library.stack(layers))
            await store.bind(console.scope, "channel", actor, layers=tuple(layers))
        elif profile is not None:
            compose(library.stack(library.profile(profile).layers))
            await store.bind(console.scope, "channel", actor, profile=profile)
        await console.say(message)
        if stats and app.router.last_stats is not None:
            print(app.router.last_stats.describe(), file=sys.stderr)
    finally:
        await app.stop()


def _print_library_problems(library: Library) -> None:
    for problem in library.problems:
        print(f"warning: skipped {problem}", file=sys.stderr)


def _cmd_layers(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "validate":
        return _validate(args.names, kind="layer")
    library = load_builtin_library(args.layers_dir or settings.layers_dir)
    _print_library_problems(library)
    if args.action == "show":
        for name in args.names:
            layer = library.layer(name)
            print(f"{layer.name} (v{layer.version}, {library.layer_origin(name)}): "
                  f"{layer.description}")
            print(explain_plan(compose([layer]), "", mask_banned=False).strip())
        return 0
    for name in sorted(library.layers):
        print(f"{name:<18} {library.layers[name].description}")
    return 0


def _cmd_profiles(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "validate":
        return _validate(args.names, kind="profiles")
    library = load_builtin_library(args.layers_dir or settings.layers_dir)
    _print_library_problems(library)
    if args.action == "show":
        for name in args.names:
            profile = library.profile(name)
            print(f"{profile.name}: {profile.description}")
            for layer in library.stack(profile.layers):
                print(f"  {layer.name:<18} {layer.description}")
        return 0
    for name in sorted(library.profiles):
        profile = library.profiles[name]
        print(f"{name:<14} {', '.join(profile.layers):<55} {profile.description}")
    return 0


def _validate(paths: Sequence[str], kind: str) -> int:
    failures = 0
    library = load_builtin_library()
    for raw in paths:
        path = Path(raw)
        try:
            text = path.read_text(encoding="utf-8")
            if kind == "layer":
                layer = parse_layer(text, str(path))
                print(f"{path}: ok (layer {layer.name!r})")
            else:
                for profile in parse_profiles(text, str(path)):
                    missing = [n for n in profile.layers if n not in library.layers]
                    if missing:
                        print(f"{path}: profile {profile.name!r} uses unknown layer "
                              f"{missing[0]!r} (not built in; it must be in CABOT_LAYERS_DIR)")
                    print(f"{path}: ok (profile {profile.name!r})")
        except OSError as error:
            print(f"{path}: cannot read ({error.strerror})", file=sys.stderr)
            failures += 1
        except CabotError as error:
            print(str(error), file=sys.stderr)
            failures += 1
    return 1 if failures else 0


def _cmd_explain(args: argparse.Namespace, settings: Settings) -> int:
    library = load_builtin_library(args.layers_dir or settings.layers_dir)
    _print_library_problems(library)
    profile = library.profile(args.profile)
    plan = compose(library.stack(profile.layers))
    print(explain_plan(plan, f"Profile '{profile.name}': {profile.description}",
                       mask_banned=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cabot", description="cabot, the composable alignment bot."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run every configured adapter (the console when none)")
    for name in ("layers", "profiles"):
        p = sub.add_parser(name, help=f"list, show or validate {name}")
        p.add_argument("action", nargs="?", choices=("list", "show", "validate"), default="list")
        p.add_argument("names", nargs="*", help="names to show, or files to validate")
        p.add_argument("--layers-dir", type=Path, help="extra layer and profile files")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``cabot`` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
        configure_logging(settings.log_level if args.command == "run" else "WARNING")
        if args.command == "run":
            asyncio.run(_run(settings))
            return 0
        if args.command == "layers":
            return _cmd_layers(args, settings)
        if args.command == "profiles":
            return _cmd_profiles(args, settings)
        if args.command == "explain":
            return _cmd_explain(args, settings)
        library = load_builtin_library(args.layers_dir or settings.layers_dir)
        _print_library_problems(library)
        asyncio.run(
            _ask(settings, library, args.profile, args.layer, args.message, args.stats)
        )
        return 0
    except CabotError as error:
        print(f"cabot: {error}", file=sys.stderr)
        return 2
    except ValidationError as error:
        problems = "; ".join(
            f"CABOT_{'_'.join(str(p) for p in item['loc']).upper()}: {item['msg']}"
            for item in error.errors()
        )
        print(f"cabot: invalid settings: {problems}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
