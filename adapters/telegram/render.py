"""Model output as Telegram HTML: everything escaped, code blocks and inline code kept.

Telegram rejects a whole message when its markup does not parse, and model output is
full of stray ``*``, ``_`` and ``<``. So nothing the model writes is taken as markup:
the text is escaped, and only structures that are unambiguous even when unbalanced are
rendered — fenced code blocks (an unclosed one runs to the end of the message), inline
code within one line, and ``**bold**`` within one line. The visible text is never
longer than the input, so a chunk within the 4,096-character limit stays within it.
"""

from __future__ import annotations

import html
import re

_FENCE = "```"
_INLINE = re.compile(r"`([^`\n]+)`|\*\*(?=\S)([^*\n]+?)(?<=\S)\*\*")
_LANGUAGE = re.compile(r"[A-Za-z0-9_+#.-]{1,32}")


def _inline(text: str) -> str:
    out: list[str] = []
    last = 0
    for match in _INLINE.finditer(text):
        out.append(html.escape(text[last : match.start()], quote=False))
        code, bold = match.group(1), match.group(2)
        if code is not None:
            out.append(f"<code>{html.escape(code, quote=False)}</code>")
        else:
            out.append(f"<b>{html.escape(bold, quote=False)}</b>")
        last = match.end()
    out.append(html.escape(text[last:], quote=False))
    return "".join(out)


def _pre(lines: list[str], language: str) -> str:
    body = html.escape("\n".join(lines), quote=False)
    if not body.strip():
        return ""  # an empty entity: Telegram refuses it, and it shows nothing anyway
    if _LANGUAGE.fullmatch(language):
        return f'<pre><code class="language-{language}">{body}</code></pre>'
    return f"<pre>{body}</pre>"


def to_html(text: str) -> str:
    """``text`` (model markdown) as Telegram HTML that always parses."""
    parts: list[str] = []
    prose: list[str] = []
    code: list[str] | None = None
    language = ""

    def flush_prose() -> None:
        if prose:
            parts.append(_inline("\n".join(prose)))
            prose.clear()

    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith(_FENCE):
            if code is None:
                flush_prose()
                code, language = [], stripped[len(_FENCE):].strip()
            else:
                parts.append(_pre(code, language))
                code = None
            continue
        if code is not None:
            code.append(line)
        else:
            prose.append(line)
    if code is not None:
        parts.append(_pre(code, language))
    flush_prose()
    return "\n".join(part for part in parts if part).strip("\n")
