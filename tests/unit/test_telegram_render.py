"""Model output as Telegram HTML: it always parses, and never shows more than was written."""

from __future__ import annotations

import pytest

from adapters.telegram.render import to_html
from tests.helpers.fake_telegram import parse_html


@pytest.mark.parametrize("markdown", [
    "**open bold and `open code",
    "a < b && c > d; <script>alert(1)</script> &amp; &nbsp;",
    "```\nunclosed fence with <tags>",
    "```\n```",
    "`` empty ``  **  ** __x__ ~~y~~ [z](http://q) ||s||",
    "```c++\nint main() { return 0 < 1; }\n```\n**done**",
])
def test_rendered_html_always_parses_and_is_never_longer(markdown: str) -> None:
    visible, _ = parse_html(to_html(markdown))  # raises as Telegram would refuse it
    assert len(visible) <= len(markdown)


def test_code_blocks_keep_their_language_and_bold_and_inline_code_are_kept() -> None:
    visible, entities = parse_html(to_html("Use:\n```python\nprint(1 < 2)\n```\n**so** `x`"))
    assert visible == "Use:\nprint(1 < 2)\nso x"
    assert [(e["type"], e.get("language")) for e in entities] == [
        ("pre", "python"), ("bold", None), ("code", None)]


def test_the_fakes_parser_reads_entities_as_telegram_does() -> None:
    # The render tests above lean on this parser; it decodes entities and finds languages.
    assert parse_html('<pre><code class="language-py">a &lt; b</code></pre>') == (
        "a < b", [{"type": "pre", "offset": 0, "length": 5, "language": "py"}])
