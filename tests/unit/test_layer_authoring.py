"""Layers written in chat: validated like layer files, named by the command, shown as TOML."""

from __future__ import annotations

import pytest

from profiles import LayerFileError, load_builtin_library
from profiles.authoring import MAX_SOURCE_CHARS, layer_from_toml, layer_to_toml, toml_in
from profiles.library import parse_layer
from profiles.models import Layer, RedactRule, RefuseRule, Rules

PIRATE = 'description = "Talks like a pirate"\nprompt = "Arr."\n[sampling]\ntemperature = 0.9\n'


def test_a_layer_without_a_name_gets_the_commands_name() -> None:
    layer, source = layer_from_toml(PIRATE, "pirate")
    assert layer.name == "pirate" and layer.sampling.temperature == 0.9
    assert source.startswith('name = "pirate"\n')
    assert parse_layer(source, "stored") == layer


def test_a_layer_naming_another_name_is_refused() -> None:
    with pytest.raises(LayerFileError, match=r"calls the layer 'parrot'.*names it 'pirate'"):
        layer_from_toml('name = "parrot"\n' + PIRATE, "pirate")


@pytest.mark.parametrize(("toml", "expected"), [
    ('description = "x"\n[sampling]\ntemprature = 1',
     "field 'sampling.temprature': unknown field; allowed fields are max_tokens, min_p, "
     "repeat_penalty, temperature, top_k, top_p"),
    ('description = "x"\n[sampling]\ntemperature = 7',
     "field 'sampling.temperature': Input should be less than or equal to 2"),
    ('prompt = "no description"', "field 'description': required field is missing"),
    ('description = "x"\n[rules]\nrefuse = [{ pattern = "(" }]',
     "field 'rules.refuse.0.pattern'"),
    ('description = "x\n', "not valid TOML"),
])
def test_a_bad_layer_is_refused_naming_the_field_and_what_is_allowed(
    toml: str, expected: str
) -> None:
    with pytest.raises(LayerFileError) as raised:
        layer_from_toml(toml, "pirate")
    assert str(raised.value).startswith("layer 'pirate': ")
    assert expected in str(raised.value)


def test_empty_or_huge_sources_are_refused() -> None:
    with pytest.raises(LayerFileError, match="no TOML was given"):
        layer_from_toml("  \n", "pirate")
    with pytest.raises(LayerFileError, match="at most"):
        layer_from_toml("#" * (MAX_SOURCE_CHARS + 1), "pirate")


def test_every_built_in_layer_reads_back_from_its_toml() -> None:
    for layer in load_builtin_library().layers.values():
        assert parse_layer(layer_to_toml(layer), layer.name) == layer


def test_awkward_strings_survive_the_round_trip() -> None:
    layer = Layer(
        name="odd", description='quotes " and \\ and \x7f', version="3",
        prompt="lines\nwith ''' three quotes\tand a tab", requires=("base",),
        rules=Rules(grammar='root ::= "yes" | "no"\n', stop=("\nUser:",),
                    refuse=(RefuseRule(pattern=r"it's \d+", message="no", exact=True),),
                    redact=(RedactRule(pattern=r"\bsecret\b", check="domain"),)),
    )
    assert parse_layer(layer_to_toml(layer), "odd") == layer


@pytest.mark.parametrize(("text", "toml"), [
    ('```toml\nname = "x"\n```', 'name = "x"\n'),
    ('here:\n```\ndescription = "x"\n```\nthanks', 'description = "x"\n'),
    ('```description = "x"\nprompt = "y"```', 'description = "x"\nprompt = "y"'),
    ('description = "x"', 'description = "x"'),
])
def test_the_toml_is_taken_from_a_code_block_or_the_text_itself(text: str, toml: str) -> None:
    assert toml_in(text) == toml
