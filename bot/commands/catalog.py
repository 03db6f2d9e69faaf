"""cabot's commands, each declared once.

``/help``, the README's command table, Discord's slash commands and Telegram's command
menu are all generated from :data:`COMMANDS`.
"""

from __future__ import annotations

from bot.commands import budget, handlers, me, memory
from bot.commands.registry import (
    SCOPE,
    ArgKind,
    Argument,
    Choice,
    CommandSpec,
    Group,
    Permission,
    Registry,
)

PROFILE = Group("profile", "See or change the profile cabot follows here", default="show")

ME = Group("me", "Your own layers and tokens left", default="show")
BUDGET = Group("budget", "This community's daily token budgets", default="show")
TOKENS = Argument("tokens", ArgKind.WORD, "Tokens per 24 hours, e.g. 5000 or 5k (0: no own limit)")

LAYERS = Argument("layers", ArgKind.LAYER, "Layer names, bottom first, separated by spaces",
                  many=True, metavar="layer")

COMMANDS = (
    CommandSpec(
        ("profile", "show"),
        "the profile in effect here, where it was set, and each layer with its origin",
        handlers.profile_show, private=True,
    ),
    CommandSpec(
        ("profile", "explain"),
        "exactly what the model is told: system prompt, sampling and rules, each with its layer",
        handlers.profile_explain,
        (Argument("profile", ArgKind.PROFILE, "A profile to explain instead of the one in effect",
                  required=False),),
        private=True,
    ),
    CommandSpec(("profile", "why"),
                "which hard rules acted on the latest reply here, from which layer, and where",
                handlers.profile_why, private=True),
    CommandSpec(("profile", "list"), "the profiles available in this community",
                handlers.profile_list, private=True),
    CommandSpec(("profile", "layers"), "the layers available in this community",
                handlers.profile_layers, private=True),
    CommandSpec(("profile", "use"), "switch this channel (or thread/topic) to a profile",
                handlers.profile_use, (Argument("profile", ArgKind.PROFILE, "The profile"), SCOPE),
                Permission.MODERATOR),
    CommandSpec(("profile", "set"), "use an explicit stack of layers, bottom first",
                handlers.profile_set, (LAYERS, SCOPE), Permission.MODERATOR),
    CommandSpec(("profile", "reset"), "drop this place's own setting and inherit again",
                handlers.profile_reset, (SCOPE,), Permission.MODERATOR),
    CommandSpec(("profile", "define"), "create a profile for this community",
                handlers.profile_define,
                (Argument("name", ArgKind.WORD, "The new profile's name"), LAYERS),
                Permission.COMMUNITY_MODERATOR),
    CommandSpec(("profile", "lock"),
                "make layers part of every stack in this community, whatever a channel selects",
                handlers.profile_lock, (LAYERS,), Permission.COMMUNITY_MODERATOR),
    CommandSpec(("profile", "unlock"), "lift a community lock",
                handlers.profile_unlock, (LAYERS,), Permission.COMMUNITY_MODERATOR),
    CommandSpec(("profile", "allow"),
                "let members add these layers to their own replies here (with /me use)",
                me.profile_allow, (LAYERS, SCOPE), Permission.MODERATOR),
    CommandSpec(("profile", "disallow"), "no longer let members pick these layers here",
                me.profile_disallow, (LAYERS, SCOPE), Permission.MODERATOR),
    CommandSpec(("profile", "audit"), "the latest alignment changes: who, when, old, new",
                handlers.profile_audit, private=True),
    CommandSpec(
        ("answer",), "answer every message in this channel, or only when addressed",
        handlers.answer,
        (Argument("mode", ArgKind.CHOICE, "When cabot answers here", choices=(
            Choice("always", "every message"),
            Choice("addressed", "only mentions, replies and commands"),
        )),),
        Permission.MODERATOR,
    ),
    CommandSpec(("me", "show"),
                "your personal layers, the ones you may pick here, and your tokens left today",
                me.me_show, private=True),
    CommandSpec(("me", "use"),
                "add layers allowed here on top of the stack, for your own replies only",
                me.me_use, (LAYERS,), private=True),
    CommandSpec(("me", "reset"), "drop your personal layers", me.me_reset, private=True),
    CommandSpec(("budget", "show"), "this community's daily token budgets and what was used",
                budget.budget_show, private=True),
    CommandSpec(("budget", "user"), "each member's tokens per 24 hours here (0: no own limit)",
                budget.budget_user, (TOKENS,), Permission.COMMUNITY_MODERATOR),
    CommandSpec(("budget", "community"),
                "the whole community's tokens per 24 hours (0: no own limit)",
                budget.budget_community, (TOKENS,), Permission.COMMUNITY_MODERATOR),
    CommandSpec(("memory",), "what cabot remembers here: how many messages, and the summary "
                "of older ones", memory.memory_show, private=True),
    CommandSpec(("forget",), "clear this channel's conversation memory", handlers.forget),
    CommandSpec(("help",), "these commands", handlers.show_help, private=True),
)


def build_registry() -> Registry:
    """The registry of every cabot command."""
    return Registry(COMMANDS, groups=(PROFILE, ME, BUDGET))
