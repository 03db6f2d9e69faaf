"""The cabot command line, run as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def cabot(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CABOT_")}
    # One llama.cpp thread: several threads slow down badly when the cores are shared.
    environment.update({"CABOT_N_THREADS": "1", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "adapters", *args],
        cwd=cwd, env={**environment, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=300, check=False,
    )


def test_layers_and_profiles_are_listed(tmp_path: Path) -> None:
    layers = cabot("layers", cwd=tmp_path)
    assert layers.returncode == 0
    assert "family-friendly" in layers.stdout and "no-links" in layers.stdout
    profiles = cabot("profiles", cwd=tmp_path)
    assert "storyteller" in profiles.stdout and "base, fiction" in profiles.stdout


def test_validate_names_the_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "ok"\ndescription = "d"\n[sampling]\ntemperature = "hot"\n')
    good = tmp_path / "good.toml"
    good.write_text('name = "good"\ndescription = "fine"\n')
    result = cabot("layers", "validate", str(good), str(bad), cwd=tmp_path)
    assert result.returncode == 1
    assert f"{good}: ok (layer 'good')" in result.stdout
    assert str(bad) in result.stderr and "sampling.temperature" in result.stderr
    assert "valid number" in result.stderr


def test_explain_shows_every_value_with_its_layer(tmp_path: Path) -> None:
    result = cabot("explain", "kids", cwd=tmp_path)
    assert result.returncode == 0
    assert "[family-friendly] Everyone here may be a child." in result.stdout
    assert "max reply length = 600 characters  (concise)" in result.stdout
    assert "fuck" in result.stdout  # the operator sees the real list


def test_unknown_profile_is_a_clear_error(tmp_path: Path) -> None:
    result = cabot("explain", "kid", cwd=tmp_path)
    assert result.returncode == 2
    assert "There is no profile called 'kid'. Did you mean 'kids'?" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_model_says_how_to_get_one(tmp_path: Path) -> None:
    result = cabot("ask", "hi", cwd=tmp_path, env={"CABOT_MODEL": str(tmp_path / "none.gguf")})
    assert result.returncode == 2
    assert "CABOT_MODEL points to" in result.stderr and ".gguf" in result.stderr


def test_a_bad_setting_is_named(tmp_path: Path) -> None:
    result = cabot("ask", "hi", cwd=tmp_path, env={"CABOT_N_CTX": "tiny"})
    assert result.returncode == 2
    assert "invalid settings: CABOT_N_CTX" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.model
def test_ask_prints_one_streamed_reply_with_a_profile_and_layers(tmp_path: Path) -> None:
    result = cabot("ask", "--layer", "base", "--layer", "precise", "--layer", "yes-no",
                   "Is water wet?", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in ("yes", "no")
    assert not (tmp_path / "cabot.db").exists()  # ask never touches the bot's database
    kids = cabot("ask", "--profile", "kids", "Say hello.", cwd=tmp_path)
    assert kids.returncode == 0 and kids.stdout.strip()
    assert "cabot>" not in kids.stdout
