# syntax=docker/dockerfile:1
# KueKan image: one image runs every role (serve | worker | migrate | seed | check-ledger ...).
# The role is the CMD; the ENTRYPOINT is always the one CLI, so the image runs the same commands
# as the README, the Makefile and CI.

# ---- builder: build the wheel and install it with its dependencies into a venv ----
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /build

# asyncpg, hiredis and shapely ship manylinux wheels for 3.11, so no compiler is installed here.
RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}"

# src/kuekan/config and src/kuekan/sql are links to the top-level config/ and sql/: copy all
# three so the wheel carries them (with the Korat data) as package data.
COPY pyproject.toml README.md ./
COPY config ./config
COPY sql ./sql
COPY src ./src
RUN pip wheel --no-deps --wheel-dir /build/dist . \
 && pip install /build/dist/*.whl

# ---- runtime: only the venv (the installed wheel holds config, SQL and data); not root ----
# How this is checked without a Docker daemon: tests/e2e/test_installed_wheel.py (in `make
# test`) does what these two stages do — builds the wheel from the checkout, installs it into a
# fresh venv outside it — and runs migrate, seed, serve, an award and check-ledger from another
# folder with KUEKAN_ENV=prod, as this image's CMD does.
FROM python:3.11-slim AS runtime

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    KUEKAN_ENV=prod

RUN groupadd --system --gid 10001 kuekan \
 && useradd --system --uid 10001 --gid kuekan --no-create-home --home-dir /app \
      --shell /usr/sbin/nologin kuekan

WORKDIR /app
COPY --from=builder /opt/venv /opt/venv

# Files stay owned by root and read-only to the service user; Kubernetes also mounts the root
# filesystem read-only, so the process writes nothing but logs to stdout.
USER 10001:10001

EXPOSE 8000

# Liveness of the API role only; the worker role is probed with `worker --health-check` by the
# orchestrator, which overrides this check.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]

ENTRYPOINT ["python", "-m", "kuekan"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
