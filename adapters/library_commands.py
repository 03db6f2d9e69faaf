"""``cabot layers``, ``cabot profiles`` and ``cabot explain``: the layer library, offline.

None of these starts the bot: they read the built-in layers and ``CABOT_LAYERS_DIR`` (or
``--layers-dir``), print, and return the process's exit status.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.commands import explain_plan
from bot.errors import CabotError
from bot.settings import Settings
from profiles import Library, compose, load_builtin_library
from profiles.library import parse_layer, parse_profiles


def load_library(layers_dir: Path | None) -> Library:
    """The built-in layers plus ``layers_dir``, with each skipped file reported on stderr."""
    library = load_builtin_library(layers_dir)
    for problem in library.problems:
        print(f"warning: skipped {problem}", file=sys.stderr)
    return library


def library_command(args: argparse.Namespace, settings: Settings) -> int:
    """``cabot layers|profiles [list|show NAME...|validate FILE...]``."""
    layers = args.command == "layers"
    if args.action == "validate":
        return validate(args.names, kind="layer" if layers else "profiles")
    library = load_library(args.layers_dir or settings.layers_dir)
    if args.action == "show":
        for name in args.names:
            (_show_layer if layers else _show_profile)(library, name)
    else:
        (_list_layers if layers else _list_profiles)(library)
    return 0


def _show_layer(library: Library, name: str) -> None:
    layer = library.layer(name)
    print(f"{layer.name} (v{layer.version}, {library.layer_origin(name)}): {layer.description}")
    print(explain_plan(compose([layer]), "", mask_banned=False).strip())


def _list_layers(library: Library) -> None:
    for name in sorted(library.layers):
        print(f"{name:<18} {library.layers[name].description}")


def _show_profile(library: Library, name: str) -> None:
    profile = library.profile(name)
    print(f"{profile.name}: {profile.description}")
    for layer in library.stack(profile.layers):
        print(f"  {layer.name:<18} {layer.description}")


def _list_profiles(library: Library) -> None:
    for name in sorted(library.profiles):
        profile = library.profiles[name]
        print(f"{name:<14} {', '.join(profile.layers):<55} {profile.description}")


def validate(paths: Sequence[str], kind: str) -> int:
    """Check layer (``kind="layer"``) or profile files; 1 if any is unreadable or invalid."""
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


def explain_command(args: argparse.Namespace, settings: Settings) -> int:
    """``cabot explain PROFILE``: what the profile tells the model, with provenance."""
    library = load_library(args.layers_dir or settings.layers_dir)
    profile = library.profile(args.profile)
    plan = compose(library.stack(profile.layers))
    print(explain_plan(plan, f"Profile '{profile.name}': {profile.description}",
                       mask_banned=False))
    return 0
