# The learner image. torch from PyPI is the CUDA build on x86_64 Linux: the learner trains on the GPU
# when the container is given one (docker-compose.yml reserves it; --device auto) and on the CPU otherwise.
FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TORCHINDUCTOR_COMPILE_THREADS=1 \
    TANDEM_METRICS_ADDRESS=0.0.0.0
WORKDIR /opt/tandem
COPY pyproject.toml README.md ./
COPY common common
COPY learner learner
COPY actor actor
COPY robots robots
RUN pip install "torch==2.13.0" && pip install .
EXPOSE 5555 5556 9400
ENTRYPOINT ["learner", "--bind", "0.0.0.0", "--run-dir", "/opt/tandem/runs/latest"]
CMD ["--algo", "sigent_sac", "--demo", "robots/sim/demos/limo_ball_to_goal.npz"]
