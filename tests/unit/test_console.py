"""The console adapter shows a streamed reply once, however the final text is trimmed."""

from __future__ import annotations

import io

from adapters.console import ConsoleAdapter
from bot.messages import IncomingMessage, OutgoingMessage


async def test_a_final_text_that_only_lost_trailing_whitespace_is_not_shown_again() -> None:
    out = io.StringIO()
    console = ConsoleAdapter(out, bare=True)

    async def reply(message: object) -> None:
        assert isinstance(message, IncomingMessage)
        sent = await console.send(OutgoingMessage(in_reply_to=message, text="Paris"))
        await console.edit(sent, "Paris.\n")  # streamed, before the stop sequence
        await console.edit(sent, "Paris.")  # the final, stripped text

    await console.start(reply)
    await console.say("What is the capital of France?")
    assert out.getvalue() == "Paris.\n\n"


async def test_a_final_text_that_changed_is_shown_again() -> None:
    out = io.StringIO()
    console = ConsoleAdapter(out, bare=True)

    async def reply(message: object) -> None:
        assert isinstance(message, IncomingMessage)
        sent = await console.send(OutgoingMessage(in_reply_to=message, text="Paris is"))
        await console.edit(sent, "Paris…")

    await console.start(reply)
    await console.say("What is the capital of France?")
    assert out.getvalue() == "Paris is\nParis…\n"
