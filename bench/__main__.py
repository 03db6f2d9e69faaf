"""`python -m bench` (`make bench`): every benchmark row, one table."""

import os

# Before llama.cpp (and with it libgomp, its OpenMP runtime) is loaded. The rows run the
# engine under test and in-process baselines (raw llama-cpp-python, the single engine)
# in one process, so more OpenMP worker threads exist than CPUs; libgomp then spins
# only 100 times at a barrier before it sleeps, and every decode, ours and the
# baselines', ran about 3x slower (row 1: 27 tok/s each, against 80 with this). ACTIVE
# makes that 1000 spins; GOMP_SPINCOUNT keeps the spinning of a process with one pool
# (a deployed bot, llama-server) at libgomp's default.
os.environ.setdefault("OMP_WAIT_POLICY", "ACTIVE")
os.environ.setdefault("GOMP_SPINCOUNT", "300000")

from bench.suite import main

raise SystemExit(main())
