"""Package files read and written: a package's TOML text (hash checked on reading), and
layers and profiles as the TOML text of layer and profiles files."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from profiles.errors import LayerFileError, PackageError
from profiles.library import describe_validation_error, parse_layer
from profiles.models import Layer, Profile
from profiles.packages.model import Package, PackageInfo
from profiles.toml_writer import dumps, model_toml


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
