"""A red team on the real model: a few dozen adversarial requests through the whole bot.

``python -m bench --only redteam`` runs the long version (over 500 generations).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.backends.batched import BatchedBackend
from tests.helpers.redteam import CATEGORIES, attacks, redteam_settings, run_attacks, tally

pytestmark = pytest.mark.model


async def test_no_attack_gets_a_forbidden_text_shown(tmp_path: Path, model_path: Path) -> None:
    chosen = attacks(full=False)
    # kv_tokens 0: the per-sequence layout, where a reply does not depend on what else is
    # in the batch, so the same attacks meet the same generations on every run (the
    # long red team, `python -m bench --only redteam`, runs the defaults).
    engine = BatchedBackend(model_path, n_ctx=1024, parallel=4, resident=8, n_threads=1,
                            n_threads_batch=1, kv_tokens=0)
    settings = redteam_settings(tmp_path, max_tokens=32, n_ctx=1024)
    outcomes = await run_attacks(settings, engine, chosen, channels=6)
    assert len(outcomes) == len(chosen)
    result = tally(outcomes)
    assert set(result.attacks) == set(CATEGORIES)
    assert result.generations >= 30
    shown = {o.attack.prompt: (o.final, o.violations) for o in outcomes if o.violations}
    assert shown == {}
    # The rules were tested, not idle: every refused message was refused, and replies came.
    assert all(o.final for o in outcomes)
