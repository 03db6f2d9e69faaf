"""One warning per outage: the Telegram poll watch and the Discord log filter, on a fake clock."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from telegram.error import NetworkError, RetryAfter, TimedOut

from adapters.discord.connection import GatewayWatch
from adapters.telegram.polling import PollWatch, describe
from tests.helpers.clock import FakeClock


def test_a_poll_outage_is_one_warning_and_one_line_back(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # else RetryAfter warns it will change
    caplog.set_level(logging.INFO, logger="adapters.telegram.polling")
    clock = FakeClock()
    watch = PollWatch(clock)
    watch.succeeded()
    watch.failed(NetworkError("Bad Gateway (502). Parsing the server response b'<html>' "
                              "failed"))
    clock.advance(1.0)
    watch.failed(TimedOut("Timed out"))  # a timeout counts, it skips the error callback
    watch.failed(RetryAfter(dt.timedelta(seconds=3)))  # a flood wait is sat out: not a failure
    clock.advance(1.5)
    watch.succeeded()
    watch.succeeded()

    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "Telegram long polling failed (NetworkError: Bad Gateway (502)); retrying"),
        ("INFO", "Telegram long polling back after 2.5 s (2 failed polls)"),
    ]
    assert watch.outages == 1 and not watch.failing


def test_a_proxy_error_page_is_left_out_of_the_reason() -> None:
    error = NetworkError("Bad Gateway (502). Parsing the server response b'<html>...' failed")
    assert describe(error) == "NetworkError: Bad Gateway (502)"


def test_discord_retry_lines_are_taken_over_while_the_adapter_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    watch = GatewayWatch(FakeClock())
    client_log = logging.getLogger("discord.client")
    watch.start()
    try:
        watch.connected("new session")
        try:
            raise ConnectionResetError("Connection reset by peer")
        except ConnectionResetError:
            client_log.exception("Attempting a reconnect in %.2fs", 1.5)
        watch.disconnected(None)
        client_log.exception("Attempting a reconnect in %.2fs", 3.0)  # a retry: no line
        watch.disconnected(None)
        watch.connected("resumed")
    finally:
        watch.stop()
    client_log.error("Attempting a reconnect in %.2fs", 1.0)  # not running: left alone

    assert [r.getMessage() for r in caplog.records] == [
        "Discord gateway connection lost (ConnectionResetError: Connection reset by peer); "
        "reconnecting",
        "Discord gateway back after 0.0 s (resumed)",
        "Attempting a reconnect in 1.00s",
    ]
    assert watch.outages == 1
