"""Loading layer and profile files: clear errors naming the file, field and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from profiles import LayerFileError, load_builtin_library
from profiles.errors import UnknownNameError
from profiles.library import parse_layer, parse_profiles

GOOD = """
name = "pirate"
description = "Talks like a pirate."
prompt = "Arr."
[sampling]
temperature = 1.1
"""


def test_a_good_layer_file_loads() -> None:
    layer = parse_layer(GOOD, "pirate.toml")
    assert layer.name == "pirate"
    assert layer.sampling.temperature == 1.1


def test_invalid_toml_names_the_file() -> None:
    with pytest.raises(LayerFileError, match=r"bad\.toml: not valid TOML"):
        parse_layer('name = "x', "bad.toml")


def test_unknown_field_lists_the_allowed_fields() -> None:
    text = GOOD.replace("temperature = 1.1", "temprature = 1.1")
    with pytest.raises(LayerFileError) as error:
        parse_layer(text, "pirate.toml")
    message = str(error.value)
    assert "pirate.toml" in message
    assert "sampling.temprature" in message
    assert "temperature" in message and "top_p" in message


def test_out_of_range_value_says_what_is_allowed() -> None:
    text = GOOD.replace("1.1", "7")
    with pytest.raises(LayerFileError) as error:
        parse_layer(text, "pirate.toml")
    assert "sampling.temperature" in str(error.value)
    assert "less than or equal to 2" in str(error.value)


def test_missing_description_and_bad_name() -> None:
    with pytest.raises(LayerFileError) as error:
        parse_layer('name = "Bad Name!"', "x.toml")
    message = str(error.value)
    assert "field 'description': required field is missing" in message
    assert "field 'name'" in message and "lowercase" in message


def test_bad_regex_is_reported() -> None:
    text = GOOD + '[rules]\nredact = [{ pattern = "(unclosed" }]\n'
    with pytest.raises(LayerFileError, match=r"rules\.redact\.0\.pattern.*regular expression"):
        parse_layer(text, "pirate.toml")


def test_profiles_file_errors() -> None:
    with pytest.raises(LayerFileError, match=r"p\.toml \[profiles\.x\].*layers"):
        parse_profiles("[profiles.x]\ndescription = 'no layers'\n", "p.toml")
    with pytest.raises(LayerFileError, match="unknown top-level key 'profile'"):
        parse_profiles("[profile.x]\nlayers = ['base']\n", "p.toml")
    assert parse_profiles("[profiles.x]\nlayers = ['base']\n", "p.toml")[0].layers == ("base",)


def test_extra_dir_adds_layers_and_profiles_and_skips_bad_files(tmp_path: Path) -> None:
    (tmp_path / "pirate.toml").write_text(GOOD)
    (tmp_path / "broken.toml").write_text("name = ")
    (tmp_path / "mine.profiles.toml").write_text(
        "[profiles.pirates]\nlayers = ['base', 'pirate']\n"
        "[profiles.ghost]\nlayers = ['base', 'nope']\n"
    )
    library = load_builtin_library(tmp_path)
    assert "pirate" in library.layers
    assert library.layer_origin("pirate") == str(tmp_path / "pirate.toml")
    assert library.profile("pirates").layers == ("base", "pirate")
    assert "ghost" not in library.profiles
    assert any("broken.toml" in p for p in library.problems)
    assert any("'ghost'" in p and "'nope'" in p for p in library.problems)


def test_unknown_names_suggest_close_matches() -> None:
    library = load_builtin_library()
    with pytest.raises(UnknownNameError) as error:
        library.profile("storyteler")
    assert error.value.suggestions[0] == "storyteller"
    assert "Did you mean 'storyteller'" in str(error.value)
    with pytest.raises(UnknownNameError) as layer_error:
        library.layer("famly-friendly")
    assert "family-friendly" in layer_error.value.suggestions
