"""`python -m bench` (`make bench`): every benchmark row, one table."""

from bench.suite import main

raise SystemExit(main())
