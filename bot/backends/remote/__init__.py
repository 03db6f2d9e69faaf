"""Remote inference: a pool of OpenAI-compatible servers behind cabot's queue.

    client.py    one server over httpx: streamed chat, tokenize, probes; errors mapped
    pool.py      which server takes a job (load, channel affinity), which are alive
    kinds.py     what each kind of server enforces at sampling, and its request body
    backend.py   the ``Backend`` the queue runs jobs on
"""

from bot.backends.remote.backend import RemoteBackend
from bot.backends.remote.kinds import KINDS, TRAITS, ServerKind
from bot.backends.remote.text import estimate_tokens, most_tokens

__all__ = ["KINDS", "TRAITS", "RemoteBackend", "ServerKind", "estimate_tokens", "most_tokens"]
