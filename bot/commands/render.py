"""How commands show stacks, plans and lists as text."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from bot.backends.base import LOCAL_SAMPLING, SAMPLING_DEFAULTS, SamplingRule
from bot.personal import PersonalResolved
from bot.reply import ChatLimits
from bot.resolution import Resolved
from bot.store import AuditEntry
from bot.why import ReplyReport
from profiles import ComposedPlan, Library
from profiles.bounds import Bound
from profiles.models import Sampling

PROMPT_NOTE = ("The system prompt asks; it is not a guarantee: the model follows it as well as "
               "it can. The rules below are enforced by cabot.")


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
    personal = resolved.personal if isinstance(resolved, PersonalResolved) else ()
    for layer in resolved.stack:
        origin = resolved.library.layer_origin(layer.name)
        bound = resolved.bound(layer.name)
        mark = f" [{bound_label(bound)}]" if bound is not None else ""
        if layer.name in personal:
            mark = " [yours: only your replies]"
        lines.append(f"  {layer.name} ({origin}){mark} — {layer.description}")
    lines.extend(f"Note: {warning}" for warning in resolved.warnings)
    return "\n".join(lines)


def bound_label(bound: Bound) -> str:
    """``operator floor`` or ``locked by serena``."""
    return "operator floor" if bound.kind == "floor" else f"locked by {bound.by}"


def explain_plan(
    plan: ComposedPlan,
    header: str,
    mask_banned: bool = True,
    *,
    bounds: tuple[Bound, ...] = (),
    enforces: frozenset[SamplingRule] = LOCAL_SAMPLING,
    limits: ChatLimits | None = None,
) -> str:
    """The ``/profile explain`` text: prompt, settings and rules, each with its layer.

    Each hard rule says where it is enforced with the backend in use (``enforces``): at
    sampling, in the stream filter, or on input.
    """
    lines = [header, f"Layers (bottom first): {', '.join(plan.layers)}"]
    floor = [b.layer.name for b in bounds if b.kind == "floor"]
    locks = [f"{b.layer.name} (by {b.by})" for b in bounds if b.kind == "lock"]
    if floor:
        lines.append(f"Operator floor (in every stack; no moderator can remove it): "
                     f"{', '.join(floor)}")
    if locks:
        lines.append(f"Locked in this community (in every stack here): {', '.join(locks)}")
    lines += ["", "System prompt:"]
    if plan.prompt:
        lines.extend(f"  [{part.layer}] {part.value}" for part in plan.prompt)
    else:
        lines.append("  (none)")
    if plan.post_history:
        lines += ["", "After the conversation, before each answer:"]
        lines.extend(f"  [{part.layer}] {part.value}" for part in plan.post_history)
    for book in plan.lore:
        lines += ["", f"Lorebook ({book.layer}): {len(book.value.entries)} entries, added "
                  f"when their keys appear in the last {book.value.scan_depth} messages, "
                  f"within {book.value.token_budget} tokens:"]
        lines.extend(f"  {', '.join(entry.keys) or '(always)'}: {entry.content[:80]}"
                     for entry in book.value.entries)
    lines += ["", "Sampling:"]
    for key in Sampling.model_fields:
        if key == "max_tokens" and limits is not None:
            lines.append(f"  max_tokens = {_reply_room(plan, limits)}")
        elif key in plan.sampling:
            lines.append(f"  {key} = {plan.sampling[key].value}  ({plan.sampling[key].layer})")
        elif key in SAMPLING_DEFAULTS:
            lines.append(f"  {key} = {SAMPLING_DEFAULTS[key]}  (cabot default)")
        else:
            lines.append(f"  {key} = (cabot default)")
    lines += ["", "Rules (and where each is enforced):"]
    lines.extend(_rules(plan, mask_banned, enforces) or ["  (none)"])
    if plan.prompt:
        lines += ["", PROMPT_NOTE]
    return "\n".join(lines)


def _reply_room(plan: ComposedPlan, limits: ChatLimits) -> str:
    """The room a reply gets, and why: a layer's ``max_tokens`` or the operator's default,
    cut to half the context window."""
    room = limits.reply_room(plan)
    asked = plan.sampling.get("max_tokens")
    if asked is not None:
        why, wanted = f"{asked.layer}", int(asked.value)
    else:
        why, wanted = "the operator's default, CABOT_REPLY_TOKENS", limits.reply_tokens
    if wanted > room:
        return (f"{room}  ({why} asks {wanted}; a reply gets at most half of the "
                f"{limits.n_ctx}-token context window)")
    return f"{room}  ({why})"


def where_enforced(rule: str, enforces: frozenset[SamplingRule]) -> str:
    """Where a kind of hard rule is enforced with a backend that ``enforces`` these."""
    if rule == "banned":
        sampling = "at sampling (logit bias) and " if "banned" in enforces else ""
        return f"{sampling}in the stream filter, before any text is shown"
    if rule == "refuse":
        return "on input: a matching message is refused before the model sees it"
    if rule == "redact":
        return "in the stream filter, before any text is shown"
    if rule == "max_reply_chars":
        return "in the stream: the reply is cut at the limit"
    if rule == "stop":
        return ("at sampling: generation ends there" if "stop" in enforces
                else "in the stream: text from there on is dropped")
    return ("at sampling: only text the grammar allows can be generated" if "grammar" in enforces
            else "not enforceable on this backend")


def _rules(plan: ComposedPlan, mask_banned: bool, enforces: frozenset[SamplingRule]
           ) -> list[str]:
    rules = []
    by_layer: dict[str, list[str]] = {}
    for sourced in plan.banned:
        by_layer.setdefault(sourced.layer, []).append(
            mask(sourced.value) if mask_banned else sourced.value
        )
    for layer, words in by_layer.items():
        rules.append(f"  banned words ({len(words)}): {', '.join(words)}  ({layer})"
                     f" — {where_enforced('banned', enforces)}")
    rules += [
        f"  refuse /{s.value.pattern}/ with \"{s.value.message}\"  ({s.layer})"
        f" — {where_enforced('refuse', enforces)}" for s in plan.refuse
    ]
    rules += [
        f"  redact /{s.value.pattern}/ as \"{s.value.replacement}\"  ({s.layer})"
        f" — {where_enforced('redact', enforces)}"
        for s in plan.redact
    ]
    if plan.max_reply_chars is not None:
        rules.append(
            f"  max reply length = {plan.max_reply_chars.value} characters  "
            f"({plan.max_reply_chars.layer}) — {where_enforced('max_reply_chars', enforces)}"
        )
    rules += [f"  stop at {s.value!r}  ({s.layer}) — {where_enforced('stop', enforces)}"
              for s in plan.stop]
    if plan.grammar is not None:
        rules.append(f"  output grammar: {plan.grammar.value}  ({plan.grammar.layer})"
                     f" — {where_enforced('grammar', enforces)}")
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


ACTION_TEXT = {
    "banned": "banned word {rule} ({layer}): masked {times} in the stream filter",
    "redact": "redaction /{rule}/ ({layer}): applied {times} in the stream filter",
    "refuse": "refusal /{rule}/ ({layer}): the message was refused on input; the model "
              "never saw it",
    "length": "length cap of {rule} characters ({layer}): the reply was cut in the stream",
    "grammar": "output grammar ({layer}): the reply was generated under it, at sampling",
}
"""How ``/profile why`` tells each kind of rule action."""


def describe_report(report: ReplyReport | None, now: float) -> str:
    """The ``/profile why`` text: which rules acted on the latest reply here, and where."""
    if report is None:
        return ("No reply here since cabot started, so nothing to explain yet; "
                "/profile explain shows the rules that would apply.")
    ago = max(0, round(now - report.at))
    lines = [f"The latest reply here ({_ago(ago)}):"]
    for action in report.actions:
        rule = mask(action.rule) if action.kind == "banned" else action.rule
        times = f"{action.count} time{'s' if action.count != 1 else ''}"
        lines.append("  " + ACTION_TEXT[action.kind].format(rule=rule, layer=action.layer,
                                                             times=times))
    if not report.actions:
        lines.append("  No hard rule had to act on it.")
    if report.banned_at_sampling:
        layers = sorted({layer for _, layer in report.banned_at_sampling})
        lines.append(f"  At sampling, the tokens of {len(report.banned_at_sampling)} banned "
                     f"word{'s' if len(report.banned_at_sampling) != 1 else ''} "
                     f"({', '.join(layers)}) were forbidden throughout (logit bias).")
    return "\n".join(lines)


def _ago(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"
