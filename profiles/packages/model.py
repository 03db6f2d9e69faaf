"""The package model: what a package holds and says about itself, its content hash, and
building one from a library (``profiles.packages`` describes the file format)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from profiles.errors import PackageError, UnknownNameError
from profiles.library import Library, suggest
from profiles.models import NAME_PATTERN, Layer, Profile
from profiles.toml_writer import model_toml

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

