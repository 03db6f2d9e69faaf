"""The console adapter over the whole bot: the operator's floor and a community lock hold."""

from __future__ import annotations

import io
from pathlib import Path

from adapters.console import ConsoleAdapter
from tests.helpers.apps import make_app
from tests.helpers.fake_backend import FakeBackend

SCRIPT = """\
/profile lock no-links
:channel stories
:mod off
/profile unlock no-links
:mod on
/profile use storyteller
/profile unlock family-friendly
Tell me a story.
/profile show
"""


async def test_the_console_keeps_floors_and_locks(tmp_path: Path) -> None:
    backend = FakeBackend("Once, you bastard, a fox found www.example.com.")
    app = make_app(tmp_path, backend, floor_layers=("family-friendly",))
    output = io.StringIO()
    console = ConsoleAdapter(output, settle=app.router.drain)
    await app.start([console])
    try:
        await console.run(io.StringIO(SCRIPT))
    finally:
        await app.stop()
    shown = output.getvalue()
    assert "Locked no-links for the whole community" in shown
    assert "Only community moderators" in shown  # :mod off cannot unlock
    assert "'fiction' conflicts with 'family-friendly', which the operator" in shown
    assert "operator's floor" in shown and "no moderator can remove" in shown
    assert "bastard" not in shown and "example.com" not in shown
    assert "Once, " in shown and "a fox found" in shown
    assert "family-friendly (built-in) [operator floor]" in shown
    assert "no-links (built-in) [locked by you]" in shown
