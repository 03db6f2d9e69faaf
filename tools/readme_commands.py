"""``python -m tools.readme_commands``: write the README's command table from the registry.

The table between the ``<!-- commands`` markers is generated from ``bot/commands/catalog.py``;
``tests/unit/test_commands.py`` fails when the two disagree.
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.commands import build_registry

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"(<!-- commands:.*?-->\n)(.*?)(\n<!-- /commands -->)", re.S)


def main() -> int:
    text = README.read_text()
    table = build_registry().markdown_table()
    updated, found = BLOCK.subn(lambda m: m.group(1) + table + m.group(3), text)
    if not found:
        raise SystemExit("README.md has no <!-- commands --> block")
    README.write_text(updated)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
