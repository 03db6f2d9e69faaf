"""No false positives: ordinary sentences pass every built-in layer's hard rules untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.filters import OutputFilter, refusal_for
from profiles import load_builtin_library
from profiles.models import Layer, Rules

CORPUS = Path(__file__).resolve().parents[1] / "data" / "ordinary_text.txt"

SCUNTHORPE = Layer(
    name="scunthorpe",
    description="Short banned words that hide inside ordinary words.",
    rules=Rules(banned=("ass", "cunt", "cock", "rapist", "dick", "rape")),
)


def sentences() -> list[str]:
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def rule_layers() -> list[Layer]:
    """Every built-in layer with a stream or input rule, and the Scunthorpe list."""
    library = load_builtin_library()
    layers = [library.layer(name) for name in sorted(library.layers)]
    with_rules = [lay for lay in layers
                  if lay.rules.banned or lay.rules.redact or lay.rules.refuse]
    return [*with_rules, SCUNTHORPE]


def test_the_corpus_is_a_few_hundred_varied_sentences() -> None:
    corpus = sentences()
    assert len(corpus) >= 300
    assert len(set(corpus)) == len(corpus)
    assert {"no-links", "family-friendly", "no-pii", "no-mentions"} <= {
        lay.name for lay in rule_layers()
    }


@pytest.mark.parametrize("layer", rule_layers(), ids=lambda lay: lay.name)
def test_no_ordinary_sentence_is_touched(layer: Layer) -> None:
    touched = []
    for sentence in sentences():
        filter_ = OutputFilter(banned=layer.rules.banned, redact=layer.rules.redact)
        shown = "".join(filter_.feed(sentence[i:i + 5]) for i in range(0, len(sentence), 5))
        shown += filter_.flush()
        if shown != sentence:
            touched.append((sentence, shown))
        if refusal_for(sentence, layer.rules.refuse) is not None:
            touched.append((sentence, "refused"))
    assert touched == []
