"""The moderators' workflow in the terminal: a layer typed as a multi-line code block,
history and rollback, a preview and a diff, and a non-moderator refused."""

from __future__ import annotations

import io
from pathlib import Path

from adapters.console import ConsoleAdapter
from bot.backends.base import GenerationRequest
from bot.messages import Scope
from tests.helpers.apps import make_app
from tests.helpers.fake_backend import FakeBackend, last_user_text

SCRIPT = """\
/layer create pirate ```toml
description = "Talks like a pirate"
prompt = "Answer like a friendly pirate."
[sampling]
temperature = 0.9
```
/layer show pirate
/profile set base pirate
/profile history
/profile preview default -- the sea
/profile diff kids
:mod off
/profile rollback
/layer delete pirate
:mod on
/layer delete pirate
/profile rollback
/layer delete pirate
"""


def by_prompt(request: GenerationRequest) -> str:
    system = request.messages[0].content if request.messages[0].role == "system" else ""
    return f"{'Arr' if 'pirate' in system else 'Hello'}, about {last_user_text(request)}"


async def test_the_console_writes_previews_diffs_and_rolls_back(tmp_path: Path) -> None:
    backend = FakeBackend(by_prompt)
    app = make_app(tmp_path, backend)
    output = io.StringIO()
    console = ConsoleAdapter(output, settle=app.router.drain)
    await app.start([console])
    try:
        await console.run(io.StringIO(SCRIPT))
        scope = Scope(platform="console", community="console", channel="general")
        remembered = await app.store.conversations.history(scope, 10)
        layers = await app.store.alignment.custom_layers("console", "console")
        audit = [entry.action for entry in await app.store.alignment.audit_log("console",
                                                                               "console")]
    finally:
        await app.stop()
    shown = output.getvalue()
    assert "Layer 'pirate' is now available in this community (v1)" in shown
    assert 'prompt = "Answer like a friendly pirate."' in shown  # /layer show
    assert "you: set → layers base, pirate" in shown  # /profile history
    assert "cabot (only you see this)> 🔍 Preview, for you only" in shown
    assert "With profile 'default':\nHello, about the sea" in shown
    assert "With the stack in effect here (layers base, pirate):\nArr, about the sea" in shown
    assert "Profile 'kids' compared with the stack in effect here" in shown
    assert shown.count("Only moderators") == 1 and "Only community moderators" in shown
    assert "Layer 'pirate' is in use, so it was not deleted" in shown
    assert "This channel is back to v0" in shown
    assert "Deleted layer 'pirate'" in shown
    assert remembered == [] and layers == []
    assert audit == ["delete layer", "rollback channel to v0", "bind channel", "create layer"]
