"""``cabot package``, ``cabot layers import-card`` and ``cabot probes``.

``package export`` writes profiles and layers (with every layer they use) to one package
file; ``package validate`` checks packages without changing anything; ``package import``
writes a package's layers and profiles into the layers directory (``CABOT_LAYERS_DIR`` or
``--layers-dir``) — never replacing one that differs without ``--yes`` or a
``--rename old=new``. ``layers import-card`` turns a SillyTavern character card (JSON or
PNG) into a layer file there, with its report. ``probes`` runs the probes of profiles
(default: every one) on the model, through the same queue the bot uses, and prints a
table; its exit status is 1 when a probe fails.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from adapters.library_commands import load_library
from bot.app import App
from bot.errors import CabotError, ConfigError
from bot.probes import ProbeResult, ProbeRunner
from bot.settings import Settings
from bot.store import Store
from profiles import ComposedPlan, Layer, Library, Profile, load_builtin_library
from profiles.bounds import Bound, bounded_stack, compose_bounded
from profiles.cards import card_layer, read_card
from profiles.errors import PackageError
from profiles.packages import (
    ImportPlan,
    Package,
    PackageInfo,
    build_package,
    check_complete,
    layer_source,
    package_toml,
    parse_package,
    parse_renames,
    plan_import,
    profiles_source,
)
from profiles.probes import OwnedProbe, stack_probes

REPLY_COLUMN = 60


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``package`` and ``probes`` subcommands."""
    package = sub.add_parser("package", help="export, import or validate layer packages")
    actions = package.add_subparsers(dest="package_action", required=True)
    export = actions.add_parser("export", help="write profiles and layers to a package file")
    export.add_argument("names", nargs="+", help="profiles or layers (a profile brings its "
                        "layers)")
    export.add_argument("-o", "--output", type=Path, required=True, help="the package file")
    export.add_argument("--name", help="the package's name (default: the first name)")
    export.add_argument("--version", default="1", help="the package's version")
    export.add_argument("--author", default="", help="who made it")
    export.add_argument("--license", default="", help="its license, e.g. CC-BY-4.0")
    export.add_argument("--description", default="", help="what it is for")
    export.add_argument("--layers-dir", type=Path)
    imported = actions.add_parser("import", help="write a package's layers and profiles into "
                                  "the layers directory")
    imported.add_argument("file", type=Path)
    imported.add_argument("--layers-dir", type=Path)
    imported.add_argument("--yes", action="store_true",
                          help="replace layers and profiles that differ (after showing how)")
    imported.add_argument("--rename", action="append", default=[], metavar="OLD=NEW",
                          help="import a layer or profile under a new name (repeatable)")
    check = actions.add_parser("validate", help="check package files; changes nothing")
    check.add_argument("files", nargs="+", type=Path)
    check.add_argument("--layers-dir", type=Path)
    probes = sub.add_parser("probes", help="run profiles' regression probes on the model")
    probes.add_argument("profiles", nargs="*", help="profiles to probe (default: all)")
    probes.add_argument("--layer", action="append", default=[],
                        help="probe this stack of layers instead (repeat to stack)")
    probes.add_argument("--layers-dir", type=Path)


def add_card_options(layers: argparse.ArgumentParser) -> None:
    """Options of ``cabot layers import-card FILE``."""
    layers.add_argument("--name", help="import-card: the layer's name (default: the card's)")
    layers.add_argument("--yes", action="store_true",
                        help="import-card: replace a layer of the same name that differs")


def layers_dir(args: argparse.Namespace, settings: Settings) -> Path:
    """Where imports write: ``--layers-dir``, else ``CABOT_LAYERS_DIR``.

    Raises:
        ConfigError: neither is set.
    """
    folder: Path | None = args.layers_dir or settings.layers_dir
    if folder is None:
        raise ConfigError("Set CABOT_LAYERS_DIR (or pass --layers-dir) to say where the "
                          "imported layers go.")
    return folder


def package_command(args: argparse.Namespace, settings: Settings) -> int:
    """``cabot package export|import|validate``."""
    if args.package_action == "export":
        return _export(args, settings)
    if args.package_action == "validate":
        return _validate(args.files, load_library(args.layers_dir or settings.layers_dir))
    return _import(args, settings)


def _export(args: argparse.Namespace, settings: Settings) -> int:
    library = load_library(args.layers_dir or settings.layers_dir)
    info = PackageInfo(name=args.name or args.names[0], version=args.version,
                       author=args.author, license=args.license,
                       description=args.description)
    package = build_package(library, args.names, info)
    args.output.write_text(package_toml(package), encoding="utf-8")
    print(f"{args.output}: {package.describe()}, sha256 {package.info.sha256}")
    return 0


def _read_package(path: Path, library: Library) -> tuple[str, Package]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PackageError(f"{path}: cannot read it ({error})") from None
    package = parse_package(text, str(path))
    check_complete(package, library.layers, str(path))
    return text, package


def _validate(files: Sequence[Path], library: Library) -> int:
    failures = 0
    for path in files:
        try:
            _, package = _read_package(path, library)
        except CabotError as error:
            print(str(error), file=sys.stderr)
            failures += 1
            continue
        hashed = ("content hash ok" if package.info.sha256 else
                  f"no content hash (it would be {package.content_hash()})")
        print(f"{path}: ok — {package.describe()}; {hashed}")
    return 1 if failures else 0


def _import(args: argparse.Namespace, settings: Settings) -> int:
    folder = layers_dir(args, settings)
    library = load_library(folder)
    _, package = _read_package(args.file, library)
    plan = plan_import(package, library, parse_renames(args.rename), load_builtin_library())
    print(f"{args.file}: {package.describe()}")
    print(plan.report())
    if plan.conflicts and not args.yes:
        print(f"Nothing was imported: {len(plan.conflicts)} would replace a layer or profile "
              "that differs (above). Run again with --yes to replace them, or with "
              "--rename OLD=NEW to import them under new names.", file=sys.stderr)
        return 1
    written = write_plan(plan, folder, library)
    print(f"Imported {len(written)} file(s) into {folder}"
          + (":\n" + "\n".join(f"  {path}" for path in written) if written else
             " (everything was already there)."))
    return 0


def write_plan(plan: ImportPlan, folder: Path, library: Library) -> list[Path]:
    """Write the plan's new and changed layers and profiles as files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for model in plan.writes:
        if isinstance(model, Layer):
            path = _target(folder, library.origins.get(f"layer:{model.name}"),
                           f"{model.name}.toml")
            path.write_text(layer_source(model), encoding="utf-8")
        else:
            assert isinstance(model, Profile)
            path = folder / f"{model.name}.profiles.toml"
            path.write_text(profiles_source([model]), encoding="utf-8")
        written.append(path)
    return written


def _target(folder: Path, origin: str | None, default: str) -> Path:
    """The file a layer already comes from in ``folder``, else ``folder / default``."""
    if origin is not None:
        path = Path(origin)
        if path.parent.resolve() == folder.resolve() and path.suffix == ".toml":
            return path
    return folder / default


def import_card_command(args: argparse.Namespace, settings: Settings) -> int:
    """``cabot layers import-card FILE [--name NAME] [--yes]``."""
    if len(args.names) != 1:
        raise ConfigError("Usage: cabot layers import-card FILE [--name NAME] [--yes]")
    path = Path(args.names[0])
    folder = layers_dir(args, settings)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise PackageError(f"{path}: cannot read it ({error.strerror})") from None
    imported = card_layer(read_card(data, str(path)), args.name)
    print(imported.report())
    library = load_library(folder)
    layer = imported.layer
    old = library.layers.get(layer.name)
    if old is not None and old != layer and not args.yes:
        print(f"Nothing was imported: a layer {layer.name!r} already exists "
              f"({library.layer_origin(layer.name)}) and differs. Run again with --yes to "
              "replace it, or with --name NEW to import the card under another name.",
              file=sys.stderr)
        return 1
    folder.mkdir(parents=True, exist_ok=True)
    target = _target(folder, library.origins.get(f"layer:{layer.name}"), f"{layer.name}.toml")
    target.write_text(layer_source(layer), encoding="utf-8")
    print(f"Wrote {target}: add {layer.name!r} to a stack, e.g. "
          f"cabot ask --layer base --layer {layer.name} \"Hello\"")
    return 0


def probes_command(args: argparse.Namespace, settings: Settings) -> int:
    """``cabot probes [profile...] [--layer L ...]``: a table; 1 when a probe fails."""
    library = load_library(args.layers_dir or settings.layers_dir)
    floor = tuple(Bound(layer, "floor", "the operator")
                  for layer in library.stack(settings.floor_layers))
    stacks: list[tuple[str, Profile | None, tuple[Layer, ...]]] = []
    if args.layer:
        stacks.append((" ".join(args.layer), None, tuple(library.stack(args.layer))))
    else:
        for name in args.profiles or list(library.profiles):
            profile = library.profile(name)
            stacks.append((profile.name, profile, tuple(library.stack(profile.layers))))
    work = [(label, compose_bounded(stack, floor),
             stack_probes(bounded_stack(stack, floor), chosen))
            for label, chosen, stack in stacks]
    results = asyncio.run(_run_probes(settings, library, work))
    return 0 if all(result.passed for _, result in results) else 1


async def _run_probes(settings: Settings, library: Library,
                      work: Sequence[tuple[str, ComposedPlan, tuple[OwnedProbe, ...]]]
                      ) -> list[tuple[str, ProbeResult]]:
    app = App(settings, store=Store(":memory:"), library=library)
    # The router's limits: lowered to the model's own window once it has started.
    runner = ProbeRunner(app.queue, app.backend.count_tokens, app.router.limits)
    width_profile = max([len("profile"), *(len(label) for label, _, _ in work)])
    width_probe = max([len("probe"), *(len(o.label) for _, _, probes in work for o in probes)])
    print(f"{'profile':<{width_profile}}  {'probe':<{width_probe}}  result  reply")
    results: list[tuple[str, ProbeResult]] = []
    try:
        await app.start([])
        for label, plan, probes in work:
            if not probes:
                print(f"{label:<{width_profile}}  {'(no probes)':<{width_probe}}  -")
            for owned in probes:
                result = await runner.run_one(plan, owned, f"cli/{label}")
                results.append((label, result))
                print(f"{label:<{width_profile}}  {owned.label:<{width_probe}}  "
                      f"{'pass' if result.passed else 'FAIL':<6}  {_cell(result)}", flush=True)
    finally:
        await app.stop()
    failed = [(label, r) for label, r in results if not r.passed]
    print(f"\n{len(results) - len(failed)} of {len(results)} probes passed.")
    for label, result in failed:
        print(f"  {label} {result.owned.label}: {result.verdict()}", file=sys.stderr)
    return results


def _cell(result: ProbeResult) -> str:
    text = result.reply if result.error is None else f"({result.error})"
    if result.refused:
        text = f"refused: {text}"
    text = " ".join(text.split())
    return text if len(text) <= REPLY_COLUMN else text[:REPLY_COLUMN - 1] + "…"

