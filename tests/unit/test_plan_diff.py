"""profiles.diff: what one composed plan adds to and removes from another, with layers."""

from __future__ import annotations

from profiles import ComposedPlan, Layer, Rules, Sampling, compose, load_builtin_library
from profiles.diff import RuleChange, diff_plans

LIBRARY = load_builtin_library()


def plan_of(*names: str) -> ComposedPlan:
    return compose(LIBRARY.stack(names))


def test_a_plan_compared_with_itself_has_no_difference() -> None:
    kids = plan_of(*LIBRARY.profile("kids").layers)
    assert diff_plans(kids, kids).empty


def test_kids_compared_with_default_adds_its_layers_prompts_sampling_and_rules() -> None:
    kids = plan_of(*LIBRARY.profile("kids").layers)
    default = plan_of(*LIBRARY.profile("default").layers)
    diff = diff_plans(kids, default)
    assert diff.layers_added == ("family-friendly", "concise", "no-links", "no-pii")
    assert diff.layers_removed == () and not diff.reordered
    assert [part.layer for part in diff.prompt_added] == [
        "family-friendly", "concise", "no-links", "no-pii"]
    assert diff.prompt_removed == ()
    changed = {change.key: change for change in diff.sampling}
    assert changed["temperature"].new is not None
    assert changed["temperature"].new.layer == "family-friendly"
    assert changed["max_tokens"].old is None and changed["max_tokens"].new is not None
    assert RuleChange("banned", "damn", "family-friendly") in diff.rules_added
    assert RuleChange("max_reply_chars", "600", "concise") in diff.rules_added
    assert {rule.layer for rule in diff.rules_added if rule.kind == "redact"} == {
        "no-links", "no-pii"}
    assert diff.rules_removed == ()


def test_the_other_way_round_everything_is_removed() -> None:
    kids = plan_of(*LIBRARY.profile("kids").layers)
    default = plan_of(*LIBRARY.profile("default").layers)
    there, back = diff_plans(kids, default), diff_plans(default, kids)
    assert back.layers_removed == there.layers_added
    assert back.rules_removed == there.rules_added
    assert [(c.key, c.old, c.new) for c in back.sampling] == [
        (c.key, c.new, c.old) for c in there.sampling]


def test_same_layers_in_another_order_are_reordered_and_a_moved_value_is_unchanged() -> None:
    a = Layer(name="a", description="a", sampling=Sampling(temperature=0.2))
    b = Layer(name="b", description="b", sampling=Sampling(temperature=0.9))
    c = Layer(name="c", description="c", sampling=Sampling(temperature=0.2))
    diff = diff_plans(compose([a, b]), compose([b, a]))
    assert diff.reordered and not diff.layers_added and not diff.layers_removed
    assert [change.key for change in diff.sampling] == ["temperature"]
    # The same value from another layer is no change of what the model gets.
    assert diff_plans(compose([b, a]), compose([b, c])).sampling == ()


def test_a_rule_both_have_from_different_layers_is_not_a_change() -> None:
    one = Layer(name="one", description="x", rules=Rules(banned=("darn",)))
    two = Layer(name="two", description="x", rules=Rules(banned=("Darn",), stop=("END",)))
    diff = diff_plans(compose([two]), compose([one]))
    assert diff.rules_added == (RuleChange("stop", "END", "two"),)
    assert diff.rules_removed == ()
