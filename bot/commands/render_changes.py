"""How histories, diffs and previews are shown as text."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from bot.backends.base import SAMPLING_DEFAULTS
from bot.commands.render import mask
from bot.preview import PreviewAnswer
from bot.store.version_log import Change, LayerVersion, PlaceVersion, ProfileVersion
from profiles.compose import Sourced
from profiles.diff import PlanDiff, RuleChange

PROMPT_SHOWN = 300
"""Characters of a prompt fragment a diff shows."""


def when(at: float) -> str:
    """``2025-01-31 14:05 UTC``."""
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _change(change: Change) -> str:
    return f"v{change.number}  {when(change.at)}  {change.actor_name}: {change.action}"


def describe_place_history(where: str, versions: Sequence[PlaceVersion], how: str) -> str:
    """The ``/profile history`` text, newest first; ``how`` says how to roll back."""
    if not versions:
        return (f"Nothing has changed in {where} since cabot started keeping history; "
                "it follows what is set above it.")
    lines = [f"History of {where}, newest first ({how}):"]
    for version in versions:
        lines.append(f"  {_change(version.change)} → {version.describe()}")
    if versions[-1].number == 1:
        start = "nothing of its own (inherits)" if versions[-1].locks is None else (
            "nothing of its own; locked: nothing")
        lines.append(f"  v0  the start → {start}")
    lines.append(f"In effect: v{versions[0].number}.")
    return "\n".join(lines)


def describe_layer_history(name: str, versions: Sequence[LayerVersion]) -> str:
    """The ``/layer history`` text, newest first."""
    lines = [f"History of layer '{name}', newest first (/layer rollback {name} <version> "
             "restores one):"]
    for version in versions:
        state = "deleted" if version.source is None else f"{len(version.source)} characters"
        lines.append(f"  {_change(version.change)} ({state})")
    latest = versions[0]
    lines.append("It is deleted now." if latest.source is None
                 else f"In use now: v{latest.number}.")
    return "\n".join(lines)


def describe_profile_history(name: str, versions: Sequence[ProfileVersion]) -> str:
    """The ``/profile history <profile>`` text, newest first."""
    lines = [f"Definitions of profile '{name}', newest first (/profile restore {name} "
             "<version> brings one back):"]
    for version in versions:
        lines.append(f"  {_change(version.change)} → {', '.join(version.layers)}")
    lines.append(f"In use now: v{versions[0].number}.")
    return "\n".join(lines)


def describe_diff(diff: PlanDiff, a: str, b: str) -> str:
    """The ``/profile diff`` text: what ``a`` adds (+) and removes (-) compared with ``b``."""
    lines = [f"{a} compared with {b} (+ only in the first, - only in the second):"]
    if diff.empty:
        lines.append("  No difference: the same layers, prompt, sampling and rules.")
        return "\n".join(lines)
    if diff.layers_added or diff.layers_removed or diff.reordered:
        parts = [f"+ {name}" for name in diff.layers_added]
        parts += [f"- {name}" for name in diff.layers_removed]
        if diff.reordered:
            parts.append("the layers both have come in another order")
        lines.append(f"Layers: {', '.join(parts)}")
    if diff.prompt_added or diff.prompt_removed:
        lines.append("Prompt:")
        lines.extend(f"  + [{part.layer}] {_short(part.value)}" for part in diff.prompt_added)
        lines.extend(f"  - [{part.layer}] {_short(part.value)}" for part in diff.prompt_removed)
    if diff.sampling:
        lines.append("Sampling:")
        for change in diff.sampling:
            lines.append(f"  {change.key}: {_sampled(change.key, change.old)} → "
                         f"{_sampled(change.key, change.new)}")
    if diff.rules_added or diff.rules_removed:
        lines.append("Hard rules:")
        lines.extend(_rule_lines("+", diff.rules_added))
        lines.extend(_rule_lines("-", diff.rules_removed))
    return "\n".join(lines)


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PROMPT_SHOWN else flat[: PROMPT_SHOWN - 1] + "…"


def _sampled(key: str, value: Sourced[Any] | None) -> str:
    if value is not None:
        return f"{value.value} ({value.layer})"
    if key in SAMPLING_DEFAULTS:
        return f"{SAMPLING_DEFAULTS[key]} (cabot default)"
    return "(cabot default)"


def _rule_lines(sign: str, rules: Sequence[RuleChange]) -> list[str]:
    lines = []
    banned: dict[str, list[str]] = {}
    for rule in rules:
        if rule.kind == "banned":
            banned.setdefault(rule.layer, []).append(mask(rule.rule))
    for layer, words in banned.items():
        lines.append(f"  {sign} banned words ({len(words)}): {', '.join(words)}  ({layer})")
    for rule in rules:
        if rule.kind == "refuse":
            lines.append(f"  {sign} refuse /{rule.rule}/ with \"{rule.detail}\"  ({rule.layer})")
        elif rule.kind == "redact":
            lines.append(f"  {sign} redact /{rule.rule}/ as \"{rule.detail}\"  ({rule.layer})")
        elif rule.kind == "stop":
            lines.append(f"  {sign} stop at {rule.rule!r}  ({rule.layer})")
        elif rule.kind == "max_reply_chars":
            lines.append(f"  {sign} max reply length = {rule.rule} characters  ({rule.layer})")
        elif rule.kind == "grammar":
            lines.append(f"  {sign} output grammar: {_short(rule.rule)}  ({rule.layer})")
    return lines


def describe_changes_briefly(diff: PlanDiff) -> str:
    """One line of what changed in a plan (after a rollback)."""
    if diff.empty:
        return "What cabot does here is the same as before."
    parts = [f"+ {name}" for name in diff.layers_added]
    parts += [f"- {name}" for name in diff.layers_removed]
    if diff.reordered:
        parts.append("layers reordered")
    if diff.prompt_added or diff.prompt_removed:
        parts.append("the prompt changed")
    if diff.sampling:
        parts.append(", ".join(change.key for change in diff.sampling) + " changed")
    rules = len(diff.rules_added) + len(diff.rules_removed)
    if rules:
        parts.append(f"{len(diff.rules_added)} hard rules added, {len(diff.rules_removed)} "
                     "removed")
    return "Here that means: " + "; ".join(parts) + " (/profile explain shows it all)."


PREVIEW_HEADER = "🔍 Preview, for you only: nothing was changed, and nothing is remembered."


def describe_preview(message: str, answers: Sequence[tuple[str, PreviewAnswer]]) -> str:
    """The ``/profile preview`` text: the message, then each labelled answer."""
    lines = [PREVIEW_HEADER, f"Message: {_short(message)}"]
    for label, answer in answers:
        lines += ["", f"▶ {label}:"]
        if answer.refused:
            lines.append(f"(refused on input, before the model) {answer.text}")
        else:
            lines.append(answer.text or "(no text)")
        if answer.failure is not None:
            lines.append(f"⚠️ {answer.failure}")
    return "\n".join(lines)
