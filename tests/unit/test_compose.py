"""Every composition rule and error of profiles.compose."""

from __future__ import annotations

import pytest

from profiles import CompositionError, Layer, compose, load_builtin_library
from profiles.models import RedactRule, RefuseRule, Rules, Sampling


def layer(name: str, **fields: object) -> Layer:
    return Layer.model_validate({"name": name, "description": f"{name} layer", **fields})


def test_prompt_fragments_concatenate_in_stack_order_with_provenance() -> None:
    plan = compose([layer("a", prompt="First."), layer("b"), layer("c", prompt="Third.")])
    assert plan.system_prompt == "First.\n\nThird."
    assert [(p.value, p.layer) for p in plan.prompt] == [("First.", "a"), ("Third.", "c")]


def test_later_layer_wins_for_sampling_and_says_which() -> None:
    plan = compose([
        layer("a", sampling=Sampling(temperature=0.2, top_k=10)),
        layer("b", sampling=Sampling(temperature=0.9)),
    ])
    assert plan.sampling["temperature"].value == 0.9
    assert plan.sampling["temperature"].layer == "b"
    assert plan.sampling["top_k"].value == 10
    assert plan.sampling["top_k"].layer == "a"
    assert "top_p" not in plan.sampling


def test_restrictions_are_united_and_the_smallest_length_wins() -> None:
    plan = compose([
        layer("a", rules=Rules(banned=("darn",), stop=("###",), max_reply_chars=900,
                               redact=(RedactRule(pattern="x+"),))),
        layer("b", rules=Rules(banned=("heck", "Darn"), stop=("###", "END"),
                               max_reply_chars=300,
                               refuse=(RefuseRule(pattern="secret", message="no"),))),
        layer("c", rules=Rules(max_reply_chars=500)),
    ])
    assert [(s.value, s.layer) for s in plan.banned] == [("darn", "a"), ("heck", "b")]
    assert [s.value for s in plan.stop] == ["###", "END"]
    assert plan.max_reply_chars is not None
    assert (plan.max_reply_chars.value, plan.max_reply_chars.layer) == (300, "b")
    assert [s.layer for s in plan.redact] == ["a"]
    assert [(s.value.message, s.layer) for s in plan.refuse] == [("no", "b")]


def test_two_grammars_is_an_error_naming_both_layers() -> None:
    with pytest.raises(CompositionError) as error:
        compose([layer("yes", rules=Rules(grammar='root ::= "y"')), layer("mid"),
                 layer("no", rules=Rules(grammar='root ::= "n"'))])
    assert "'yes'" in str(error.value) and "'no'" in str(error.value)


def test_one_grammar_is_kept_with_its_layer() -> None:
    plan = compose([layer("a"), layer("g", rules=Rules(grammar='root ::= "y"'))])
    assert plan.grammar is not None and plan.grammar.layer == "g"


@pytest.mark.parametrize("order", [("formal", "humor"), ("humor", "formal")])
def test_conflicting_pair_is_an_error_naming_both_in_either_order(
    order: tuple[str, str],
) -> None:
    layers = {
        "formal": layer("formal", conflicts_with=("humor",)),
        "humor": layer("humor"),
    }
    with pytest.raises(CompositionError) as error:
        compose([layers[order[0]], layers[order[1]]])
    assert "'formal'" in str(error.value) and "'humor'" in str(error.value)


def test_missing_requirement_names_what_to_add() -> None:
    with pytest.raises(CompositionError) as error:
        compose([layer("base"), layer("spicy", requires=("fiction", "base"))])
    assert "'spicy' requires 'fiction'" in str(error.value)
    assert "add it" in str(error.value)


def test_requirement_satisfied_anywhere_in_the_stack() -> None:
    plan = compose([layer("fiction"), layer("spicy", requires=("fiction",))])
    assert plan.layers == ("fiction", "spicy")


def test_empty_and_duplicate_stacks_are_errors() -> None:
    with pytest.raises(CompositionError, match="at least one layer"):
        compose([])
    with pytest.raises(CompositionError, match="appears twice"):
        compose([layer("a"), layer("a")])


def test_builtin_library_is_rich_and_every_profile_composes() -> None:
    library = load_builtin_library()
    assert library.problems == ()
    assert len(library.layers) >= 12
    assert len(library.profiles) >= 5
    for name in ("default", "storyteller", "kids", "researcher"):
        assert name in library.profiles
    for required in ("base", "helpful", "concise", "formal", "humor", "family-friendly",
                     "no-links", "fiction", "research", "italian", "spanish"):
        assert required in library.layers
    for layer_ in library.layers.values():
        assert layer_.description and "\n" not in layer_.description
    for profile in library.profiles.values():
        plan = compose(library.stack(profile.layers))
        assert plan.layers == profile.layers


def test_kids_profile_restricts_more_than_default() -> None:
    library = load_builtin_library()
    kids = compose(library.stack(library.profile("kids").layers))
    default = compose(library.stack(library.profile("default").layers))
    assert kids.banned and not default.banned
    assert kids.redact and kids.max_reply_chars is not None
