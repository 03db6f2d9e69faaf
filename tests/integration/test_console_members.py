"""The console over the whole bot: personal layers, budgets, names in a group channel,
and what is remembered."""

from __future__ import annotations

import io
from pathlib import Path

from adapters.console import ConsoleAdapter
from tests.helpers.apps import make_app
from tests.helpers.fake_backend import FakeBackend, last_user_text

SCRIPT = """\
/profile allow italian
:mod off
:who max
/profile allow humor
/me use italian
:group on
hello there
:who ada
hi
/budget user 20
:mod on
/budget user 20
hi again
one more
/memory
/forget
:group off
:who max
in private now
/me
"""


async def test_the_console_has_personal_layers_budgets_and_names(tmp_path: Path) -> None:
    backend = FakeBackend("one two three four five six seven eight")  # 10 pieces
    app = make_app(tmp_path, backend)
    output = io.StringIO()
    console = ConsoleAdapter(output, settle=app.router.drain)
    await app.start([console])
    try:
        await console.run(io.StringIO(SCRIPT))
    finally:
        await app.stop()
    shown = output.getvalue()
    assert "Members may now pick italian for themselves in this channel" in shown
    assert "Only moderators" in shown and "Only community moderators" in shown
    assert "now add italian" in shown
    said = [last_user_text(r) for r in backend.requests]
    assert said == ["max: hello there", "ada: hi", "ada: hi again", "in private now"]
    prompts = [r.messages[0].content for r in backend.requests]
    assert "Rispondi sempre in italiano." in prompts[0]
    assert "Rispondi sempre in italiano." not in prompts[1]
    assert "Each member may now have 20 tokens generated per 24 hours here." in shown
    assert "You've used your daily 20 tokens in this community" in shown  # ada's third
    assert "remembers 6 messages word for word" in shown
    assert "Forgot this channel's conversation (6 messages)" in shown
    assert "Your personal layers: italian." in shown
    assert "0 of 20 tokens left for you in this community" in shown
