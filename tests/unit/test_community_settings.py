"""A community's own settings: stored, audited, moved with the community."""

from __future__ import annotations

from bot.store import Actor, Store
from bot.store.community_settings import CommunitySettings

MOD = Actor(id="m1", name="Mia")


async def test_a_setting_is_kept_audited_and_moves_with_its_community(store: Store) -> None:
    settings = CommunitySettings(store.database)
    assert await settings.get("telegram", "-100", "probes") is None
    assert await settings.set("telegram", "-100", "probes", "block", MOD) is None
    assert await settings.set("telegram", "-100", "probes", "warn", MOD) == "block"
    assert await settings.get("telegram", "-100", "probes") == "warn"
    assert await settings.get("telegram", "-200", "probes") is None
    audit = await store.alignment.audit_log("telegram", "-100")
    assert [(e.action, e.old, e.new) for e in audit[:2]] == [
        ("setting probes", "block", "warn"), ("setting probes", None, "block")]
    assert await store.move_community("telegram", "-100", "-1009", MOD)
    assert await settings.get("telegram", "-1009", "probes") == "warn"
    assert await settings.get("telegram", "-100", "probes") is None
