"""cabot's commands, each declared once.

``/help``, the README's command table, Discord's slash commands and Telegram's command
menu are all generated from :data:`COMMANDS`.
"""

from __future__ import annotations

from bot.commands import (
    automod,
    budget,
    handlers,
    history,
    layers,
    me,
    memory,
    packages,
    preview,
    probing,
)
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

LAYER = Group("layer", "Write, show and roll back this community's own layers",
              default="list")
VERSION = Argument("version", ArgKind.WORD, "A version number, like v3 (default: the one "
                   "before the latest)", required=False)
LAYER_NAME = Argument("name", ArgKind.WORD, "The layer's name")
LAYER_TOML = Argument("toml", ArgKind.TEXT, "The layer's TOML (or attach a .toml file)",
                      required=False)
LAYER_FILE = Argument("file", ArgKind.FILE, "The layer as a .toml file", required=False,
                      metavar=".toml file")

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
    CommandSpec(("profile", "probes"),
                "whether a failing probe only warns (the default) or blocks a profile switch",
                probing.profile_probes,
                (Argument("mode", ArgKind.CHOICE, "What a failing probe does", required=False,
                          choices=(Choice("warn", "switch anyway, and say which failed"),
                                   Choice("block", "do not switch"))),),
                Permission.COMMUNITY_MODERATOR),
    CommandSpec(("profile", "automod"),
                "import the server's AutoMod keyword rules as a locked layer, or compare them",
                automod.profile_automod,
                (Argument("action", ArgKind.CHOICE, "Import the rules or compare them",
                          choices=(Choice("import", "make the automod layer from them"),
                                   Choice("show", "compare the layer with them"))),),
                Permission.COMMUNITY_MODERATOR),
    CommandSpec(("profile", "history"),
                "every version of this place's alignment (or of a community profile): who, "
                "when, what", history.profile_history,
                (Argument("profile", ArgKind.PROFILE, "A community profile's definitions "
                          "instead of this place's versions", required=False), SCOPE),
                private=True),
    CommandSpec(("profile", "rollback"),
                "restore an earlier version of this place (default: undo the last change)",
                history.profile_rollback, (VERSION, SCOPE), Permission.MODERATOR),
    CommandSpec(("profile", "restore"), "restore an earlier definition of a community profile",
                history.profile_restore,
                (Argument("profile", ArgKind.PROFILE, "The community profile"), VERSION),
                Permission.COMMUNITY_MODERATOR),
    CommandSpec(("profile", "preview"),
                "what a profile or layers would answer to a message, beside what is in effect "
                "(only you see it; nothing changes)", preview.profile_preview,
                (Argument("stack", ArgKind.STACK, "A profile, or layers bottom first",
                          many=True, metavar="profile or layer"),
                 Argument("message", ArgKind.TEXT, "What to answer (default: the latest "
                          "message here)", required=False)),
                private=True),
    CommandSpec(("profile", "diff"),
                "what a profile or layer stack adds and removes compared with another "
                "(default: the one in effect here)", preview.profile_diff,
                (Argument("a", ArgKind.STACK, "A profile, or layers joined with +"),
                 Argument("b", ArgKind.STACK, "What to compare with (default: in effect here)",
                          required=False)),
                private=True),
    CommandSpec(("layer", "list"), "the layers available in this community",
                layers.layer_list, private=True),
    CommandSpec(("layer", "show"), "a layer's TOML (a start for one of your own)",
                layers.layer_show, (Argument("name", ArgKind.LAYER, "The layer"),),
                private=True),
    CommandSpec(("layer", "create"),
                "write a layer for this community: its TOML in a code block or a .toml file",
                layers.layer_create, (LAYER_NAME, LAYER_TOML, LAYER_FILE),
                Permission.COMMUNITY_MODERATOR),
    CommandSpec(("layer", "edit"), "replace a community layer's TOML (the old version is kept)",
                layers.layer_edit, (LAYER_NAME, LAYER_TOML, LAYER_FILE),
                Permission.COMMUNITY_MODERATOR),
    CommandSpec(("layer", "import"),
                "import an attached layer package or SillyTavern character card into this "
                "community",
                packages.layer_import,
                (Argument("options", ArgKind.WORD, "replace (to replace what differs), or "
                          "old=new to import under new names", required=False, many=True,
                          metavar="replace|old=new"),
                 Argument("file", ArgKind.FILE, "The package (.toml) or card (.json, .png)",
                          required=False, metavar="package or card")),
                Permission.COMMUNITY_MODERATOR),
    CommandSpec(("layer", "delete"), "delete a community layer no place uses",
                layers.layer_delete, (Argument("name", ArgKind.LAYER, "The layer"),),
                Permission.COMMUNITY_MODERATOR),
    CommandSpec(("layer", "history"), "every version of a community layer: who, when",
                layers.layer_history, (Argument("name", ArgKind.LAYER, "The layer"),),
                private=True),
    CommandSpec(("layer", "rollback"),
                "restore an earlier version of a community layer (default: the one before)",
                layers.layer_rollback, (Argument("name", ArgKind.LAYER, "The layer"), VERSION),
                Permission.COMMUNITY_MODERATOR),
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
    return Registry(COMMANDS, groups=(PROFILE, ME, BUDGET, LAYER))
