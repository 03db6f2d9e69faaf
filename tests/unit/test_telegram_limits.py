"""Telegram's flood limits as cabot tracks them per chat, on a fake clock."""

from __future__ import annotations

from adapters.telegram.limits import ChatBudget, FloodLimits
from tests.helpers.clock import FakeClock
from tests.helpers.fake_telegram import GROUP


def test_group_budget_bursts_then_paces_within_20_a_minute() -> None:
    clock = FakeClock()
    budget = ChatBudget(FloodLimits(edit_interval=1.0, group_per_minute=20), clock)
    budget.spend(GROUP, edit=False)
    edits = []
    while clock.now < 1000 + 600:  # ten minutes of a stream asking for an edit every 0.1 s
        if budget.edit_delay(GROUP, is_group=True) == 0:
            budget.spend(GROUP, edit=True)
            edits.append(clock.now)
        clock.advance(0.1)
    assert edits[4] - edits[0] < 5  # a short reply streams at once a second
    for index, start in enumerate(edits):
        assert len([t for t in edits[index:] if t < start + 60]) <= 16  # 4 left for sends
    assert budget.send_delay(GROUP, is_group=True) == 0
