"""Importing a package into a library: renames, and what each layer or profile would
change (new, unchanged or changed, field by field), so nothing is replaced silently."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from profiles.errors import PackageError
from profiles.library import Library
from profiles.models import NAME_PATTERN, Layer, Profile
from profiles.packages.model import Package
from profiles.toml_writer import model_toml

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

