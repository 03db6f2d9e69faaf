"""``python -m adapters``: the ``cabot`` command line (``adapters.main``)."""

from __future__ import annotations

import sys

from adapters.main import main

if __name__ == "__main__":
    sys.exit(main())
