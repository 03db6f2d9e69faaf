"""Real inference servers as child processes on free loopback ports, for tests and benchmarks.

``llama_cpp_python_server`` runs llama-cpp-python's own OpenAI-compatible server (the
``server`` extra); ``llama_server`` runs llama.cpp's C++ ``llama-server`` built by
``scripts/build-llama-server``. Both wait until the model is loaded, and each process
is killed by ``stop`` (or ``kill``, abruptly, as a crash would).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from bot.backends.remote.kinds import ServerKind

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "scripts" / "build-llama-server"


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """A running server: its URL, its process and its log file."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    kind: ServerKind
    _log: IO[bytes] | None = field(default=None, repr=False)

    def wait_ready(self, path: str, timeout: float = 120.0) -> None:
        """Until GET ``path`` answers 200 (the model is loaded).

        Raises:
            RuntimeError: the process exited or did not get ready, with its log's tail.
        """
        deadline = time.monotonic() + timeout
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                try:
                    if client.get(self.url + path).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        self.stop()
        tail = self.log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"the server at {self.url} did not get ready:\n{tail}")

    def kill(self) -> None:
        """End the server at once, as a crash would (SIGKILL)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """End the server (SIGTERM, then SIGKILL) and close its log."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log is not None:
            self._log.close()
            self._log = None


def _spawn(command: list[str], port: int, log_path: Path, kind: ServerKind) -> ServerProcess:
    log = log_path.open("wb")
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost"}
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, env=env)
    return ServerProcess(f"http://127.0.0.1:{port}", process, log_path, kind, log)


def llama_cpp_python_server(model: Path, log_dir: Path, *, n_ctx: int = 2048,
                            n_threads: int = 1, api_key: str | None = None) -> ServerProcess:
    """llama-cpp-python's server on ``model``, loaded and answering."""
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model),
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx),
               "--n_threads", str(n_threads), "--n_threads_batch", str(n_threads)]
    if api_key is not None:
        command += ["--api_key", api_key]
    server = _spawn(command, port, log_dir / f"llama-cpp-python-{port}.log",
                    "llama-cpp-python")
    if api_key is None:
        server.wait_ready("/v1/models")
    else:
        server.wait_ready("/docs")  # answers without the key once the app is up
    return server


def llama_server_binary(*, built: bool = True) -> Path | None:
    """The C++ ``llama-server``: ``CABOT_LLAMA_SERVER``, else (with ``built``) where
    ``scripts/build-llama-server`` puts it; None when there is none."""
    given = os.environ.get("CABOT_LLAMA_SERVER")
    if given:
        return Path(given) if Path(given).is_file() else None
    if not built:
        return None
    if BUILD_SCRIPT.is_file() and shutil.which("bash"):
        where = subprocess.run(["bash", str(BUILD_SCRIPT), "--path"], capture_output=True,
                               text=True, check=False, cwd=ROOT).stdout.strip()
        if where and Path(where).is_file():
            return Path(where)
    return None


def llama_server(binary: Path, model: Path, log_dir: Path, *, slots: int = 1,
                 n_ctx: int = 2048, n_threads: int = 1, api_key: str | None = None
                 ) -> ServerProcess:
    """llama.cpp's ``llama-server`` with ``slots`` parallel slots of ``n_ctx`` tokens each."""
    port = free_port()
    command = [str(binary), "-m", str(model), "-np", str(slots), "-c", str(n_ctx * slots),
               "-t", str(n_threads), "-tb", str(n_threads), "--host", "127.0.0.1",
               "--port", str(port), "--no-webui", "--cache-prompt"]
    if api_key is not None:
        command += ["--api-key", api_key]
    server = _spawn(command, port, log_dir / f"llama-server-{port}.log", "llama-server")
    server.wait_ready("/health")  # public: answers without the key
    return server


def start_server(kind: ServerKind, model: Path, log_dir: Path, *, slots: int = 1,
                 api_key: str | None = None) -> ServerProcess:
    """A ``kind`` server (``llama-cpp-python`` or ``llama-server``) on ``model``."""
    if kind == "llama-cpp-python":
        return llama_cpp_python_server(model, log_dir, api_key=api_key)
    binary = llama_server_binary()
    if binary is None:
        raise RuntimeError("llama-server is not built: make llama-server")
    return llama_server(binary, model, log_dir, slots=slots, api_key=api_key)
