"""How commands show stacks, plans and lists as text."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from bot.backends.base import SAMPLING_DEFAULTS
from bot.resolution import Resolved
from bot.store import AuditEntry
from profiles import ComposedPlan, Library
from profiles.models import Sampling


def mask(word: str) -> str:
    """``d***`` for ``damn``: enough to recognise a banned word without printing it."""
    return word[0] + "*" * (len(word) - 1) if len(word) > 1 else "*"


def describe_stack(resolved: Resolved) -> str:
    """The ``/profile show`` text."""
    binding = resolved.binding
    what = f"Profile '{resolved.profile}'" if resolved.profile else "A custom layer stack"
    lines = [f"{what} — {resolved.source()}"]
    if binding is not None:
        lines[0] += f" (by {binding.set_by})"
    for layer in resolved.stack:
        origin = resolved.library.layer_origin(layer.name)
        lines.append(f"  {layer.name} ({origin}) — {layer.description}")
    lines.extend(f"Note: {warning}" for warning in resolved.warnings)
    return "\n".join(lines)


def explain_plan(plan: ComposedPlan, header: str, mask_banned: bool = True) -> str:
    """The ``/profile explain`` text: prompt, settings and rules, each with its layer."""
    lines = [header, f"Layers (bottom first): {', '.join(plan.layers)}", "", "System prompt:"]
    if plan.prompt:
        lines.extend(f"  [{part.layer}] {part.value}" for part in plan.prompt)
    else:
        lines.append("  (none)")
    lines += ["", "Sampling:"]
    for key in Sampling.model_fields:
        if key in plan.sampling:
            lines.append(f"  {key} = {plan.sampling[key].value}  ({plan.sampling[key].layer})")
        elif key in SAMPLING_DEFAULTS:
            lines.append(f"  {key} = {SAMPLING_DEFAULTS[key]}  (cabot default)")
        else:
            lines.append(f"  {key} = (cabot default)")
    lines += ["", "Rules:"]
    lines.extend(_rules(plan, mask_banned) or ["  (none)"])
    return "\n".join(lines)


def _rules(plan: ComposedPlan, mask_banned: bool) -> list[str]:
    rules = []
    by_layer: dict[str, list[str]] = {}
    for sourced in plan.banned:
        by_layer.setdefault(sourced.layer, []).append(
            mask(sourced.value) if mask_banned else sourced.value
        )
    for layer, words in by_layer.items():
        rules.append(f"  banned words ({len(words)}): {', '.join(words)}  ({layer})")
    rules += [
        f"  refuse /{s.value.pattern}/ with \"{s.value.message}\"  ({s.layer})" for s in plan.refuse
    ]
    rules += [
        f"  redact /{s.value.pattern}/ as \"{s.value.replacement}\"  ({s.layer})"
        for s in plan.redact
    ]
    if plan.max_reply_chars is not None:
        rules.append(
            f"  max reply length = {plan.max_reply_chars.value} characters  "
            f"({plan.max_reply_chars.layer})"
        )
    rules += [f"  stop at {s.value!r}  ({s.layer})" for s in plan.stop]
    if plan.grammar is not None:
        rules.append(f"  output grammar: {plan.grammar.value}  ({plan.grammar.layer})")
    return rules


def list_profiles(library: Library) -> str:
    """The ``/profile list`` text."""
    lines = ["Profiles:"]
    for name in sorted(library.profiles):
        profile = library.profiles[name]
        lines.append(f"  {name}{_origin(library.profile_origin(name))} — "
                     f"{profile.description} ({', '.join(profile.layers)})")
    return "\n".join(lines)


def list_layers(library: Library) -> str:
    """The ``/profile layers`` text."""
    lines = ["Layers:"]
    for name in sorted(library.layers):
        lines.append(f"  {name}{_origin(library.layer_origin(name))} — "
                     f"{library.layers[name].description}")
    return "\n".join(lines)


def describe_audit(entries: Sequence[AuditEntry]) -> str:
    """The ``/profile audit`` text, newest first."""
    if not entries:
        return "No profile changes recorded in this community yet."
    lines = ["Latest changes (newest first):"]
    for entry in entries:
        when = dt.datetime.fromtimestamp(entry.at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        place = entry.scope.channel or "community"
        lines.append(
            f"  {when} {entry.actor_name}: {entry.action} in {place}: "
            f"{entry.old or '(inherited)'} → {entry.new or '(inherited)'}"
        )
    return "\n".join(lines)


def _origin(origin: str) -> str:
    return "" if origin == "built-in" else f" [{origin}]"
