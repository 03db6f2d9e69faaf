"""Layer packages: one file carrying layers and profiles (with their probes) to share.

A package is a TOML file::

    [package]
    format = "cabot-package/1"
    name = "kids-safe"            # a name like a layer's
    version = "1.2.0"
    author = "Ada"
    license = "CC-BY-4.0"
    description = "What it is for."
    sha256 = "…"                  # the content hash (below)

    [layers.family-friendly]      # one table per layer: a layer file's fields, minus name
    description = "…"
    prompt = "…"
    [layers.family-friendly.rules]
    banned = ["…"]

    [profiles.kids]               # as in a profiles file
    layers = ["base", "family-friendly"]

The content hash is the SHA-256 of the layers and profiles as canonical JSON (keys
sorted, no spaces, defaults left out, layers and profiles by name): editing a packaged
layer by hand changes it, reformatting the file does not. Importing checks it, refuses a
package whose profiles or ``requires`` name a layer it neither contains nor finds among
the target's layers (naming every missing one), and never replaces a layer or profile of
the same name silently: :func:`plan_import` says what would change, and the caller needs
a confirmation (``replace``) or new names (``renames``).
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from profiles.errors import LayerFileError, PackageError, UnknownNameError
from profiles.library import Library, describe_validation_error, parse_layer, suggest
from profiles.models import NAME_PATTERN, Layer, Profile
from profiles.toml_writer import dumps, model_toml

FORMAT: Literal["cabot-package/1"] = "cabot-package/1"


class PackageInfo(BaseModel):
    """A package's name, version, author, license, description and content hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["cabot-package/1"] = FORMAT
    name: str = Field(pattern=NAME_PATTERN)
    version: str = Field(default="1", min_length=1, max_length=40)
    author: str = Field(default="", max_length=200)
    license: str = Field(default="", max_length=100)
    description: str = Field(default="", max_length=500)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Package:
    """The layers and profiles of one package, and what it says about itself."""

    info: PackageInfo
    layers: tuple[Layer, ...] = ()
    profiles: tuple[Profile, ...] = ()

    def content_hash(self) -> str:
        """The SHA-256 of the layers and profiles as canonical JSON."""
        content = {
            "layers": [model_toml(layer) for layer in sorted(self.layers, key=_name)],
            "profiles": [model_toml(p) for p in sorted(self.profiles, key=_name)],
        }
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def library(self, base: Library | None = None) -> Library:
        """``base`` (or nothing) with this package's layers and profiles added."""
        start = base if base is not None else Library({}, {})
        return start.extended(self.layers, self.profiles, origin=f"package {self.info.name}")

    def describe(self) -> str:
        """``kids-safe 1.2.0 by Ada (CC-BY-4.0): 3 layers, 1 profile``."""
        info = self.info
        who = f" by {info.author}" if info.author else ""
        terms = f" ({info.license})" if info.license else ""
        return (f"{info.name} {info.version}{who}{terms}: {_count(len(self.layers), 'layer')}, "
                f"{_count(len(self.profiles), 'profile')}")


def _name(model: Layer | Profile) -> str:
    return model.name


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def build_package(library: Library, names: Iterable[str], info: PackageInfo) -> Package:
    """A package of the profiles and layers called ``names``, with every layer they use.

    A profile brings its layers; a layer brings the layers it ``requires``.

    Raises:
        UnknownNameError: a name is neither a profile nor a layer.
    """
    profiles: dict[str, Profile] = {}
    layers: dict[str, Layer] = {}
    wanted: list[str] = []
    for name in names:
        if name in library.profiles:
            profile = library.profile(name)
            profiles[name] = profile
            wanted.extend(profile.layers)
        elif name in library.layers:
            wanted.append(name)
        else:
            raise UnknownNameError("profile or layer", name,
                                   suggest(name, [*library.profiles, *library.layers]))
    while wanted:
        name = wanted.pop(0)
        if name in layers:
            continue
        layer = library.layer(name)
        layers[name] = layer
        wanted.extend(layer.requires)
    package = Package(info, tuple(layers.values()), tuple(profiles.values()))
    return Package(info.model_copy(update={"sha256": package.content_hash()}),
                   package.layers, package.profiles)


def package_toml(package: Package) -> str:
    """The package file's text, with its content hash."""
    info = package.info.model_copy(update={"sha256": package.content_hash()})
    data: dict[str, Any] = {"package": info.model_dump(mode="json", exclude_none=True)}
    if package.layers:
        data["layers"] = {layer.name: model_toml(layer, exclude={"name"})
                          for layer in package.layers}
    if package.profiles:
        data["profiles"] = {p.name: model_toml(p, exclude={"name"}) for p in package.profiles}
    return dumps(data)


def parse_package(text: str, source: str) -> Package:
    """Read a package file (``source`` names it in errors); its hash is checked too.

    Raises:
        PackageError: not TOML, no ``[package]`` table, a bad field (named), or a content
            hash that does not match the content.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PackageError(f"{source}: not valid TOML ({error}); is it a cabot package?"
                           ) from None
    unknown = sorted(set(data) - {"package", "layers", "profiles"})
    if unknown:
        raise PackageError(f"{source}: unknown top-level key {unknown[0]!r}; a package holds "
                           "[package], [layers.<name>] and [profiles.<name>] tables")
    if not isinstance(data.get("package"), dict):
        raise PackageError(f"{source}: no [package] table; a package starts with [package] "
                           "(name, version, author, license, description)")
    try:
        info = PackageInfo.model_validate(data["package"])
    except ValidationError as error:
        raise PackageError(describe_validation_error(f"{source} [package]", PackageInfo, error)
                           ) from None
    layers = tuple(_entries(data, "layers", Layer, source))
    profiles = tuple(_entries(data, "profiles", Profile, source))
    if not layers and not profiles:
        raise PackageError(f"{source}: the package holds no layers and no profiles")
    package = Package(info, layers, profiles)
    if info.sha256 is not None and info.sha256 != package.content_hash():
        raise PackageError(
            f"{source}: the content hash does not match: its layers or profiles were changed "
            "after it was exported. Get the package again from its author, or remove the "
            "sha256 line if you edited it yourself on purpose."
        )
    return package


def _entries(data: Mapping[str, Any], key: str, model: type[Layer] | type[Profile],
             source: str) -> list[Any]:
    tables = data.get(key, {})
    if not isinstance(tables, dict):
        raise PackageError(f"{source}: {key!r} must be a table of [{key}.<name>] tables")
    entries = []
    for name, body in tables.items():
        where = f"{source} [{key}.{name}]"
        if not isinstance(body, dict):
            raise PackageError(f"{where} must be a table")
        if "name" in body:
            raise PackageError(f"{where}: the name is the table's key; remove 'name'")
        try:
            entries.append(model.model_validate({"name": name, **body}))
        except ValidationError as error:
            raise PackageError(describe_validation_error(where, model, error)) from None
    return entries


def missing_layers(package: Package, available: Iterable[str]) -> list[str]:
    """Layers the package's profiles or ``requires`` name that it lacks and ``available`` lacks."""
    known = {layer.name for layer in package.layers} | set(available)
    needed = [name for p in package.profiles for name in p.layers]
    needed += [name for layer in package.layers for name in layer.requires]
    return sorted({name for name in needed if name not in known})


def check_complete(package: Package, available: Iterable[str], source: str) -> None:
    """Refuse a package that names layers nobody has.

    Raises:
        PackageError: naming every missing layer.
    """
    missing = missing_layers(package, available)
    if missing:
        raise PackageError(
            f"{source} names {_count(len(missing), 'layer')} it does not contain and that "
            f"{'is' if len(missing) == 1 else 'are'} not available here: "
            f"{', '.join(missing)}. Ask its author for a package that includes "
            f"{'it' if len(missing) == 1 else 'them'}."
        )


ItemStatus = Literal["new", "unchanged", "changed"]


@dataclass(frozen=True)
class ImportItem:
    """What importing one layer or profile would do."""

    kind: Literal["layer", "profile"]
    name: str
    status: ItemStatus
    changes: tuple[str, ...] = ()
    renamed_from: str | None = None
    builtin: bool = False
    """It would replace a built-in layer or profile."""

    def describe(self) -> str:
        """``layer 'kids' would change: prompt changed; banned words added: heck``."""
        renamed = f" (renamed from {self.renamed_from!r})" if self.renamed_from else ""
        if self.status == "new":
            return f"{self.kind} {self.name!r}{renamed}: new"
        if self.status == "unchanged":
            return f"{self.kind} {self.name!r}{renamed}: already here, identical"
        where = " (built in)" if self.builtin else ""
        return (f"{self.kind} {self.name!r}{renamed}{where} would change: "
                + "; ".join(self.changes))


@dataclass(frozen=True)
class ImportPlan:
    """A package as it would be imported (after renames), item by item."""

    package: Package
    layers: tuple[Layer, ...]
    profiles: tuple[Profile, ...]
    items: tuple[ImportItem, ...] = field(default=())

    @property
    def conflicts(self) -> tuple[ImportItem, ...]:
        """Items that would replace something different of the same name."""
        return tuple(item for item in self.items if item.status == "changed")

    @property
    def writes(self) -> tuple[Layer | Profile, ...]:
        """The layers and profiles to store: new or changed ones."""
        changing = {(i.kind, i.name) for i in self.items if i.status != "unchanged"}
        return (*(layer for layer in self.layers if ("layer", layer.name) in changing),
                *(p for p in self.profiles if ("profile", p.name) in changing))

    def report(self) -> str:
        """One line per item."""
        return "\n".join(item.describe() for item in self.items)


def parse_renames(words: Iterable[str]) -> dict[str, str]:
    """``["kids=kids2"]`` → ``{"kids": "kids2"}``.

    Raises:
        PackageError: a word is not ``old=new`` or the new name is not a valid name.
    """
    renames: dict[str, str] = {}
    for word in words:
        old, sep, new = word.partition("=")
        if not sep or not old or not re.match(NAME_PATTERN, new):
            raise PackageError(
                f"{word!r} is not a rename: write old=new, the new name 1-40 lowercase "
                "letters, digits, '-' or '_'."
            )
        renames[old] = new
    return renames


def plan_import(package: Package, target: Library, renames: Mapping[str, str] | None = None,
                builtin: Library | None = None) -> ImportPlan:
    """What importing ``package`` into ``target`` would do, after ``renames``.

    A renamed layer is renamed wherever the package names it (its profiles' stacks,
    ``requires`` and ``conflicts_with``). ``builtin`` marks which names are built in.

    Raises:
        PackageError: a rename names something the package does not hold.
    """
    renames = dict(renames or {})
    layer_names = {layer.name for layer in package.layers}
    profile_names = {p.name for p in package.profiles}
    unknown = sorted(set(renames) - layer_names - profile_names)
    if unknown:
        raise PackageError(f"The package holds nothing called {', '.join(unknown)} to rename; "
                           f"it holds {', '.join(sorted(layer_names | profile_names))}.")

    def layer_name(name: str) -> str:
        return renames.get(name, name) if name in layer_names else name

    layers = tuple(
        layer.model_copy(update={
            "name": layer_name(layer.name),
            "requires": tuple(layer_name(n) for n in layer.requires),
            "conflicts_with": tuple(layer_name(n) for n in layer.conflicts_with),
        })
        for layer in package.layers
    )
    profiles = tuple(
        p.model_copy(update={"name": renames.get(p.name, p.name),
                             "layers": tuple(layer_name(n) for n in p.layers)})
        for p in package.profiles
    )
    for model in (*layers, *profiles):
        type(model).model_validate(model.model_dump())  # a renamed model is still valid
    originals = {v: k for k, v in renames.items()}
    items: list[ImportItem] = []
    for layer in layers:
        old = target.layers.get(layer.name)
        items.append(_item("layer", layer.name, old, layer, originals.get(layer.name),
                           builtin is not None and layer.name in builtin.layers))
    for profile in profiles:
        old_profile = target.profiles.get(profile.name)
        items.append(_item("profile", profile.name, old_profile, profile,
                           originals.get(profile.name),
                           builtin is not None and profile.name in builtin.profiles))
    return ImportPlan(package, layers, profiles, tuple(items))


def _item(kind: Literal["layer", "profile"], name: str, old: Layer | Profile | None,
          new: Layer | Profile, renamed_from: str | None, builtin: bool) -> ImportItem:
    if old is None:
        return ImportItem(kind, name, "new", renamed_from=renamed_from)
    if old == new:
        return ImportItem(kind, name, "unchanged", renamed_from=renamed_from)
    return ImportItem(kind, name, "changed", tuple(describe_changes(old, new)), renamed_from,
                      builtin)


def describe_changes(old: BaseModel, new: BaseModel) -> list[str]:
    """What differs between two layers (or profiles), field by field, in words."""
    before, after = _flat(model_toml(old)), _flat(model_toml(new))
    changes = []
    for key in sorted(set(before) | set(after)):
        was, now = before.get(key), after.get(key)
        if was == now:
            continue
        if isinstance(was, list) or isinstance(now, list):
            old_items = [json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v
                         for v in (was or [])]
            new_items = [json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v
                         for v in (now or [])]
            added = [v for v in new_items if v not in old_items]
            removed = [v for v in old_items if v not in new_items]
            parts = []
            if added:
                parts.append("added " + ", ".join(_short(v) for v in added))
            if removed:
                parts.append("removed " + ", ".join(_short(v) for v in removed))
            changes.append(f"{key}: " + ("; ".join(parts) or "reordered"))
        elif was is None:
            changes.append(f"{key} set to {_short(str(now))}")
        elif now is None:
            changes.append(f"{key} removed (was {_short(str(was))})")
        else:
            changes.append(f"{key} {_short(str(was))} → {_short(str(now))}")
    return changes


def _flat(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def layer_source(layer: Layer) -> str:
    """A layer as the TOML text of a layer file (what the store keeps)."""
    return dumps(model_toml(layer))


def profiles_source(profiles: Iterable[Profile]) -> str:
    """Profiles as the TOML text of a profiles file."""
    return dumps({"profiles": {p.name: model_toml(p, exclude={"name"}) for p in profiles}})


def check_layer_source(layer: Layer) -> None:
    """Fail if ``layer`` would not read back as itself from its TOML (a writer bug guard).

    Raises:
        LayerFileError: it does not.
    """
    if parse_layer(layer_source(layer), f"layer {layer.name!r}") != layer:
        raise LayerFileError(f"layer {layer.name!r} does not survive being written as TOML")
