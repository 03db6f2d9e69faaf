"""The import direction: adapters -> bot -> profiles; the core never imports a platform SDK."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
FORBIDDEN = {
    "bot": {"discord", "telegram", "adapters"},
    "profiles": {"discord", "telegram", "adapters", "bot", "aiosqlite", "llama_cpp"},
}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_it_may(package: str) -> None:
    offenders = []
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in FORBIDDEN[package]:
                    offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_importing_the_core_loads_no_platform_sdk() -> None:
    code = (
        "import sys, bot.app, bot.router, bot.commands, bot.store, bot.backends.llama\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('discord', 'telegram', 'llama_cpp')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"  # not even llama_cpp until a model is loaded
