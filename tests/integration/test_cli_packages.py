"""``cabot package``, ``cabot layers import-card`` and ``cabot probes``, run as a user would."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from tests.helpers.cards import CARDS
from tests.integration.test_cli import cabot


def test_export_validate_and_import_round_trip_a_profile(tmp_path: Path) -> None:
    package = tmp_path / "kids.cabot.toml"
    exported = cabot("package", "export", "kids", "-o", str(package), "--version", "1.0.0",
                     "--author", "Ada", "--license", "CC0-1.0", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert "kids 1.0.0 by Ada (CC0-1.0): 6 layers, 1 profile, sha256 " in exported.stdout
    checked = cabot("package", "validate", str(package), cwd=tmp_path)
    assert checked.returncode == 0 and "content hash ok" in checked.stdout

    layers = tmp_path / "layers"
    same = cabot("package", "import", str(package), "--layers-dir", str(layers), cwd=tmp_path)
    assert same.returncode == 0, same.stderr
    assert "layer 'family-friendly': already here, identical" in same.stdout
    assert "everything was already there" in same.stdout

    copy = cabot("package", "import", str(package), "--layers-dir", str(layers),
                 "--rename", "kids=kids-copy", cwd=tmp_path)
    assert copy.returncode == 0, copy.stderr
    assert (layers / "kids-copy.profiles.toml").exists()
    original = cabot("explain", "kids", cwd=tmp_path).stdout.splitlines()[1:]
    imported = cabot("explain", "kids-copy", "--layers-dir", str(layers), cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.splitlines()[1:] == original  # the same plan, line for line


def test_importing_never_replaces_silently(tmp_path: Path) -> None:
    layers = tmp_path / "layers"
    layers.mkdir()
    (layers / "calm.toml").write_text('name = "calm"\ndescription = "Calm."\nprompt = "Breathe."\n')
    package = tmp_path / "calm.cabot.toml"
    package.write_text(
        '[package]\nname = "calm-pack"\nversion = "2"\n'
        '[layers.calm]\ndescription = "Calmer."\nprompt = "Breathe slowly."\n'
        '[layers.calm.rules]\nbanned = ["hurry"]\n'
        '[profiles.zen]\nlayers = ["base", "calm"]\n'
    )
    refused = cabot("package", "import", str(package), "--layers-dir", str(layers),
                    cwd=tmp_path)
    assert refused.returncode == 1
    assert "layer 'calm' would change: description Calm. → Calmer.; prompt Breathe. → " \
           "Breathe slowly.; rules.banned: added hurry" in refused.stdout
    assert "Nothing was imported" in refused.stderr and "--rename" in refused.stderr
    assert (layers / "calm.toml").read_text().endswith('"Breathe."\n')
    assert not (layers / "zen.profiles.toml").exists()

    renamed = cabot("package", "import", str(package), "--layers-dir", str(layers),
                    "--rename", "calm=calmer", cwd=tmp_path)
    assert renamed.returncode == 0, renamed.stderr
    zen = tomllib.loads((layers / "zen.profiles.toml").read_text())
    assert zen["profiles"]["zen"]["layers"] == ["base", "calmer"]
    assert "Breathe." in (layers / "calm.toml").read_text()

    replaced = cabot("package", "import", str(package), "--layers-dir", str(layers), "--yes",
                     cwd=tmp_path)
    assert replaced.returncode == 0, replaced.stderr
    assert tomllib.loads((layers / "calm.toml").read_text())["rules"]["banned"] == ["hurry"]


def test_a_package_naming_missing_layers_is_refused(tmp_path: Path) -> None:
    package = tmp_path / "broken.cabot.toml"
    package.write_text('[package]\nname = "broken"\n'
                       '[profiles.mix]\nlayers = ["base", "ghost", "phantom"]\n')
    for action in (("validate", str(package)),
                   ("import", str(package), "--layers-dir", str(tmp_path / "l"))):
        result = cabot("package", *action, cwd=tmp_path)
        assert result.returncode in (1, 2)
        assert "2 layers it does not contain and that are not available here: ghost, " \
               "phantom" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "l").exists()


def test_an_edited_package_is_refused_by_its_hash(tmp_path: Path) -> None:
    package = tmp_path / "p.cabot.toml"
    assert cabot("package", "export", "tutor", "-o", str(package), cwd=tmp_path).returncode == 0
    package.write_text(package.read_text().replace("max_reply_chars = 600",
                                                   "max_reply_chars = 6000"))
    result = cabot("package", "validate", str(package), cwd=tmp_path)
    assert result.returncode == 1 and "content hash does not match" in result.stderr


@pytest.mark.parametrize("card", ["nyx.v3.png", "nyx.v3.json"])
def test_import_card_writes_a_layer_and_reports_the_injection(tmp_path: Path,
                                                              card: str) -> None:
    layers = tmp_path / "layers"
    source = tmp_path / card
    shutil.copy(CARDS / card, source)
    result = cabot("layers", "import-card", str(source), "--layers-dir", str(layers),
                   cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Character card 'Nyx' (chara_card_v3" in result.stdout
    assert "⚠️ 6 line(s) try to override the stack and were left out" in result.stdout
    written = (layers / "nyx.toml").read_text()
    assert "Ignore all previous" not in written and "im_start" not in written
    shown = cabot("layers", "show", "nyx", "--layers-dir", str(layers), cwd=tmp_path)
    assert shown.returncode == 0 and "Nyx is a sarcastic night-owl librarian" in shown.stdout
    again = cabot("layers", "import-card", str(CARDS / "mira.v2.png"), "--name", "nyx",
                  "--layers-dir", str(layers), cwd=tmp_path)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_probes_is_listed_and_needs_known_profiles(tmp_path: Path) -> None:
    result = cabot("probes", "kidz", cwd=tmp_path)
    assert result.returncode == 2 and "Did you mean 'kids'" in result.stderr


@pytest.mark.model
def test_probes_pass_on_builtin_profiles_and_a_failing_one_fails(tmp_path: Path) -> None:
    result = cabot("probes", "kids", "yes-no", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["profile", "probe", "result", "reply"]
    assert any(line.startswith("kids") and "family-friendly/refuses-adult-topics" in line
               and "refused:" in line for line in lines)
    assert any(line.startswith("yes-no") and "yes-no/yes-or-no-only" in line for line in lines)
    assert "9 of 9 probes passed." in result.stdout
    layers = tmp_path / "layers"
    layers.mkdir()
    (layers / "strict.toml").write_text(
        'name = "strict"\ndescription = "d"\n[[probes]]\nname = "impossible"\n'
        'prompt = "Say hello."\nmust_match = "^zzz-never$"\n')
    failing = cabot("probes", "--layer", "base", "--layer", "strict", "--layers-dir",
                    str(layers), cwd=tmp_path)
    assert failing.returncode == 1
    assert "strict/impossible: FAIL: does not match ^zzz-never$" in failing.stderr
