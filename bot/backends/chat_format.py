"""Chat formats: how a conversation becomes the prompt text a model continues.

Both engines build their prompt here, so the same conversation gives the same prompt
(the same tokens) on either. ``CABOT_CHAT_FORMAT`` chooses the format:

    auto          the GGUF's own chat template; ``transcript`` when it has none
    chatml        ``<|im_start|>role ... <|im_end|>`` (SmolLM2, Qwen, ...)
    llama-3       ``<|start_header_id|>role<|end_header_id|> ... <|eot_id|>``
    gemma         ``<start_of_turn>user ... <end_of_turn>``, the system prompt in the first turn
    mistral       ``[INST] ... [/INST]``, the system prompt in the first instruction
    transcript    a plain transcript a base model continues: the system prompt as a
                  preamble, then ``User: text`` / ``Assistant: text`` lines, ending with
                  ``Assistant:``; it stops where the next turn would start
    a file path   a Jinja chat template, written as a GGUF's ``tokenizer.chat_template``

Every format owns the stop sequences that end the assistant's turn in text (a named
format on a model whose vocabulary lacks its markers still stops), and the engines
enforce them like a profile's stops. Message text is escaped before rendering: the
model's control-token spellings are broken up (``ControlTokenGuard``), and in a
transcript a line that starts with a speaker's name and a colon (``Assistant:``, ``User:``)
is broken up too, so no one can open a turn that is not theirs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bot.backends.base import ChatMessage
from bot.backends.control_tokens import ZERO_WIDTH_SPACE, ControlTokenGuard
from bot.errors import ConfigError, InferenceError

log = logging.getLogger(__name__)

AUTO = "auto"
TRANSCRIPT = "transcript"

_GEMMA_TEMPLATE = (
    "{{ bos_token }}"
    "{% if messages and messages[0]['role'] == 'system' %}"
    "{% set system = messages[0]['content'] | trim + '\n\n' %}"
    "{% set loop_messages = messages[1:] %}"
    "{% else %}{% set system = '' %}{% set loop_messages = messages %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + (system if loop.first else '')"
    " + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)

_MISTRAL_TEMPLATE = (
    "{{ bos_token }}"
    "{% if messages and messages[0]['role'] == 'system' %}"
    "{% set system = messages[0]['content'] | trim + '\n\n' %}"
    "{% set loop_messages = messages[1:] %}"
    "{% else %}{% set system = '' %}{% set loop_messages = messages %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ ' ' + message['content'] | trim + eos_token }}"
    "{% else %}"
    "{{ '[INST] ' + (system if loop.first else '') + message['content'] | trim + ' [/INST]' }}"
    "{% endif %}"
    "{% endfor %}"
)

_CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_LLAMA3_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)

NAMED_TEMPLATES: dict[str, tuple[str, tuple[str, ...]]] = {
    "chatml": (_CHATML_TEMPLATE, ("<|im_end|>", "<|im_start|>")),
    "llama-3": (_LLAMA3_TEMPLATE, ("<|eot_id|>", "<|start_header_id|>")),
    "gemma": (_GEMMA_TEMPLATE, ("<end_of_turn>", "<start_of_turn>")),
    "mistral": (_MISTRAL_TEMPLATE, ("</s>", "[INST]")),
}
"""Each known template with the stop sequences that end its assistant turn in text."""

FORMAT_NAMES: tuple[str, ...] = (AUTO, *NAMED_TEMPLATES, TRANSCRIPT)
"""Every value ``CABOT_CHAT_FORMAT`` accepts besides a template file's path."""


@dataclass(frozen=True)
class ModelSpecials:
    """What a chat format needs to know about a model.

    Args:
        template: the GGUF's chat template, if it has one.
        bos: how the beginning-of-text token is written ("" when the model has none).
        eos: how the end-of-text token is written ("" when the model has none).
        add_bos: whether the model expects the beginning-of-text token before a prompt.
    """

    template: str | None
    bos: str
    eos: str
    add_bos: bool


class ChatFormat(Protocol):
    """Turns a conversation into the text of a prompt ending at the assistant's turn."""

    name: str
    stop: tuple[str, ...]
    """Text that ends the assistant's turn (enforced like any stop sequence)."""
    strip_leading: bool
    """Whether whitespace that opens a reply belongs to the format (``Assistant: ``)."""

    def render(self, messages: Sequence[ChatMessage]) -> str:
        """The prompt text, to be tokenized with control tokens parsed and without BOS.

        Raises:
            InferenceError: the format cannot express this conversation.
        """
        ...


class TemplateFormat:
    """A Jinja chat template, rendered as llama-cpp-python renders a GGUF's own.

    Args:
        name: how the format is named in logs ("the GGUF's template", "chatml", a path).
        template: the Jinja source.
        specials: the model's BOS and EOS spellings.
        guard: escapes the model's control tokens in message text.
        stop: text that ends the assistant's turn.

    Raises:
        ConfigError: the template is not valid Jinja.
    """

    def __init__(self, name: str, template: str, specials: ModelSpecials,
                 guard: ControlTokenGuard, stop: tuple[str, ...] = ()) -> None:
        import jinja2
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.name = name
        self.stop = stop
        self.strip_leading = False
        self._guard = guard
        try:
            self._formatter: Any = Jinja2ChatFormatter(
                template=template, eos_token=specials.eos, bos_token=specials.bos
            )
        except jinja2.TemplateError as error:
            raise ConfigError(
                f"The chat template ({name}) is not valid Jinja ({error}); fix it or set "
                "CABOT_CHAT_FORMAT to a known format."
            ) from None

    def render(self, messages: Sequence[ChatMessage]) -> str:
        try:
            return str(self._formatter(messages=self._guard.chat_messages(messages)).prompt)
        except Exception as error:  # jinja raises, or the template's raise_exception
            raise InferenceError(
                f"The chat template ({self.name}) rejected the conversation ({error}); "
                "set CABOT_CHAT_FORMAT to another format."
            ) from None


def neutralise_turns(text: str, names: Sequence[str]) -> str:
    """``text`` with every line that starts with one of ``names`` and a colon broken up.

    A zero-width space after the name's first letter (in any letter case, after any
    indentation) keeps the line from reading as that speaker's turn; other lines, and
    colons elsewhere, are left as they are. Every line break Python knows (``\\r``,
    U+2028, ...) becomes ``\\n`` first, so none of them starts a line the model reads as
    a new turn either.
    """
    lines = text.splitlines()
    if names:
        alternatives = "|".join(re.escape(n) for n in sorted(set(names), key=len, reverse=True))
        turn = re.compile(rf"^(\s*)({alternatives})(\s*:)", re.IGNORECASE)
        lines = [turn.sub(lambda m: m[1] + m[2][0] + ZERO_WIDTH_SPACE + m[2][1:] + m[3], line)
                 for line in lines]
    return "\n".join(lines)


class TranscriptFormat:
    """A plain transcript for models without a chat template (base models).

    The system messages come first as a preamble, then one ``Name: text`` line (or
    several, for a message of several lines) per turn, and the prompt ends with the
    assistant's name and a colon. Generation stops where a line would open a turn.

    Args:
        specials: whether to start with the model's BOS, and its spelling.
        guard: escapes the model's control tokens in message text.
        user: the name for user messages.
        assistant: the name for the assistant's messages.
    """

    name = TRANSCRIPT
    strip_leading = True

    def __init__(self, specials: ModelSpecials, guard: ControlTokenGuard, *,
                 user: str = "User", assistant: str = "Assistant") -> None:
        self._bos = specials.bos if specials.add_bos else ""
        self._guard = guard
        self._names = {"user": user, "assistant": assistant}
        self.speakers = (user, assistant, "System")
        """Names that open a turn here, so never at a line's start inside a message."""
        self.stop = tuple(dict.fromkeys(
            f"\n{label}:" for name in (user, assistant) for label in (name, name.lower())
        ))

    def render(self, messages: Sequence[ChatMessage]) -> str:
        preamble: list[str] = []
        turns: list[str] = []
        for message in messages:
            text = self._guard.escape(message.content)
            if message.role == "system":
                preamble.append(text.strip())
                continue
            name = self._names.get(message.role, message.role.capitalize())
            turns.append(f"{name}: {neutralise_turns(text.strip(), self.speakers)}")
        turns.append(f"{self._names['assistant']}:")
        head = "\n\n".join(part for part in preamble if part)
        return self._bos + (head + "\n\n" if head else "") + "\n".join(turns)


def choose_format(setting: str, specials: ModelSpecials, guard: ControlTokenGuard
                  ) -> ChatFormat:
    """The chat format ``setting`` (``CABOT_CHAT_FORMAT``) names, for this model.

    Reads the template file when ``setting`` is a path (call it off the event loop).

    Raises:
        ConfigError: the setting names no known format and no readable template file,
            or the template is not valid Jinja.
    """
    if setting == AUTO:
        if specials.template:
            return TemplateFormat("the GGUF's chat template", specials.template, specials,
                                  guard)
        log.info("the model has no chat template; using the transcript format")
        return TranscriptFormat(specials, guard)
    if setting == TRANSCRIPT:
        return TranscriptFormat(specials, guard)
    if setting in NAMED_TEMPLATES:
        template, stop = NAMED_TEMPLATES[setting]
        return TemplateFormat(setting, template, specials, guard, stop)
    path = Path(setting).expanduser()
    try:
        template = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(
            f"CABOT_CHAT_FORMAT is {setting!r}: not a known format "
            f"({', '.join(FORMAT_NAMES)}) and not a readable template file ({error})."
        ) from None
    return TemplateFormat(str(path), template, specials, guard)
