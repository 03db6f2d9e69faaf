"""Loading layers and profiles from TOML files, and looking them up by name."""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from profiles.errors import LayerFileError, UnknownNameError
from profiles.models import Layer, Profile


def _allowed_fields(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The field names allowed at ``loc`` (the location of an unknown field)."""
    current: type[BaseModel] = model
    for part in loc[:-1]:
        if not isinstance(part, str) or part not in current.model_fields:
            return []
        annotation = current.model_fields[part].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            current = annotation
        else:
            return []
    return sorted(current.model_fields)


def describe_validation_error(
    source: str, model: type[BaseModel], error: ValidationError
) -> str:
    """One message naming the file, each bad field and what is allowed."""
    lines = []
    for item in error.errors():
        loc = tuple(item["loc"])
        where = ".".join(str(p) for p in loc) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            allowed = _allowed_fields(model, loc)
            message = f"unknown field; allowed fields are {', '.join(allowed)}"
        elif item["type"] == "missing":
            message = "required field is missing"
        elif item["type"] == "string_pattern_mismatch":
            message = (
                "must be 1-40 lowercase letters, digits, '-' or '_', "
                "starting with a letter or digit"
            )
        lines.append(f"field '{where}': {message}")
    return f"{source}: " + "; ".join(lines)


def parse_layer(text: str, source: str) -> Layer:
    """Parse a layer from TOML text; ``source`` names the file in errors."""
    data = _load_toml(text, source)
    try:
        return Layer.model_validate(data)
    except ValidationError as error:
        raise LayerFileError(describe_validation_error(source, Layer, error)) from None


def parse_profiles(text: str, source: str) -> list[Profile]:
    """Parse a profiles file: a ``[profiles.<name>]`` table per profile."""
    data = _load_toml(text, source)
    unknown = set(data) - {"profiles"}
    if unknown:
        raise LayerFileError(
            f"{source}: unknown top-level key {sorted(unknown)[0]!r}; "
            "a profiles file holds only [profiles.<name>] tables"
        )
    tables = data.get("profiles", {})
    if not isinstance(tables, dict):
        raise LayerFileError(f"{source}: 'profiles' must be a table of [profiles.<name>] tables")
    profiles = []
    for name, body in tables.items():
        if not isinstance(body, dict):
            raise LayerFileError(f"{source}: [profiles.{name}] must be a table with 'layers'")
        try:
            profiles.append(Profile.model_validate({"name": name, **body}))
        except ValidationError as error:
            message = describe_validation_error(f"{source} [profiles.{name}]", Profile, error)
            raise LayerFileError(message) from None
    return profiles


def _load_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise LayerFileError(f"{source}: not valid TOML ({error}); fix the syntax") from None


def suggest(name: str, candidates: Iterable[str]) -> list[str]:
    """Up to three known names close to ``name``."""
    pool = list(candidates)
    close = difflib.get_close_matches(name, pool, n=3, cutoff=0.5)
    prefixed = [c for c in sorted(pool) if c.startswith(name) and c not in close]
    return (close + prefixed)[:3]


@dataclass(frozen=True)
class Library:
    """Known layers and profiles, looked up by name.

    ``problems`` lists files that could not be loaded; they are skipped, never fatal.
    """

    layers: Mapping[str, Layer]
    profiles: Mapping[str, Profile]
    origins: Mapping[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    def layer(self, name: str) -> Layer:
        """The layer called ``name``; raises UnknownNameError with suggestions."""
        try:
            return self.layers[name]
        except KeyError:
            raise UnknownNameError("layer", name, suggest(name, self.layers)) from None

    def profile(self, name: str) -> Profile:
        """The profile called ``name``; raises UnknownNameError with suggestions."""
        try:
            return self.profiles[name]
        except KeyError:
            raise UnknownNameError("profile", name, suggest(name, self.profiles)) from None

    def stack(self, names: Iterable[str]) -> list[Layer]:
        """The layers called ``names``, in order."""
        return [self.layer(name) for name in names]

    def extended(
        self,
        layers: Iterable[Layer] = (),
        profiles: Iterable[Profile] = (),
        origin: str = "community",
    ) -> Library:
        """A new library with ``layers`` and ``profiles`` added (replacing same names)."""
        new_layers = dict(self.layers)
        new_profiles = dict(self.profiles)
        origins = dict(self.origins)
        for layer in layers:
            new_layers[layer.name] = layer
            origins[f"layer:{layer.name}"] = origin
        for profile in profiles:
            new_profiles[profile.name] = profile
            origins[f"profile:{profile.name}"] = origin
        return Library(new_layers, new_profiles, origins, self.problems)

    def layer_origin(self, name: str) -> str:
        """Where the layer ``name`` came from."""
        return self.origins.get(f"layer:{name}", "built-in")

    def profile_origin(self, name: str) -> str:
        """Where the profile ``name`` came from."""
        return self.origins.get(f"profile:{name}", "built-in")


def _builtin_files() -> tuple[list[tuple[str, str]], str]:
    data = resources.files("profiles") / "data"
    layer_files = sorted(
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in (data / "layers").iterdir()
        if entry.name.endswith(".toml")
    )
    return layer_files, (data / "profiles.toml").read_text(encoding="utf-8")


def load_builtin_library(extra_dir: Path | None = None) -> Library:
    """The built-in layers and profiles, plus those in ``extra_dir`` if given.

    Built-in files must be valid (a bad one raises LayerFileError). Files in
    ``extra_dir`` that fail to load are recorded in ``Library.problems`` and skipped.
    Files there ending in ``.profiles.toml`` (or named ``profiles.toml``) hold profiles;
    every other ``.toml`` file holds one layer.
    """
    layer_files, profiles_text = _builtin_files()
    layers = {}
    for filename, text in layer_files:
        layer = parse_layer(text, f"built-in layer file {filename}")
        layers[layer.name] = layer
    profiles = {p.name: p for p in parse_profiles(profiles_text, "built-in profiles.toml")}
    origins: dict[str, str] = {}
    problems: list[str] = []
    if extra_dir is not None:
        if not extra_dir.is_dir():
            problems.append(f"{extra_dir}: the layers directory does not exist")
        else:
            for path in sorted(extra_dir.glob("*.toml")):
                try:
                    text = path.read_text(encoding="utf-8")
                    if path.name == "profiles.toml" or path.name.endswith(".profiles.toml"):
                        for profile in parse_profiles(text, str(path)):
                            profiles[profile.name] = profile
                            origins[f"profile:{profile.name}"] = str(path)
                    else:
                        layer = parse_layer(text, str(path))
                        layers[layer.name] = layer
                        origins[f"layer:{layer.name}"] = str(path)
                except (LayerFileError, OSError, UnicodeDecodeError) as error:
                    problems.append(str(error))
    library = Library(layers, profiles, origins, tuple(problems))
    for profile in list(profiles.values()):
        missing = [n for n in profile.layers if n not in layers]
        if missing:
            origin = library.profile_origin(profile.name)
            problems.append(
                f"{origin} profile {profile.name!r}: unknown layer {missing[0]!r}; "
                "define it or remove it from the profile"
            )
            del profiles[profile.name]
    return Library(layers, profiles, origins, tuple(problems))
