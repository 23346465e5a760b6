# The actor image for simulated robots (MuJoCo twins, headless EGL rendering) and for robots whose
# vendor SDK installs from PyPI. Build arg TORCH_INDEX_URL may name a CPU-only torch wheel index for
# a smaller image; empty means the default index.
FROM python:3.11-slim-bookworm
ARG TORCH_INDEX_URL=""
RUN apt-get update \
    && apt-get install -y --no-install-recommends libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6 \
    && rm -rf /var/lib/apt/lists/*
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    MUJOCO_GL=egl \
    TANDEM_METRICS_ADDRESS=0.0.0.0
WORKDIR /opt/tandem
COPY pyproject.toml README.md ./
COPY common common
COPY actor actor
COPY learner learner
COPY robots robots
COPY deploy/docker/sim-actor.sh ./sim-actor.sh
RUN pip install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "torch==2.13.0" && pip install .
EXPOSE 9401
ENTRYPOINT ["actor"]
CMD ["--help"]
