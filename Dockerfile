# syntax=docker/dockerfile:1
# Mailpreflight image: build wheels in one stage, install them into a venv in a slim final stage.
# Build: docker build -t mailpreflight .    (BuildKit, the default since Docker 23)

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY . .
# The project's wheel plus a wheel for every dependency, so the final stage needs no index.
RUN pip wheel --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

# The wheels are bind-mounted, not copied, so they never land in a layer.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-index --find-links /wheels mailpreflight

# A fixed numeric uid/gid so Kubernetes' runAsNonRoot can verify it and volumes can be chowned.
RUN groupadd --system --gid 10001 mailpreflight \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin mailpreflight \
    && mkdir -p /app/var \
    && chown -R 10001:10001 /app/var

WORKDIR /app
# 0.0.0.0 is accepted only with CHECKER_AUTH on (the default); never set CHECKER_AUTH=off here.
ENV CHECKER_HOST=0.0.0.0 \
    CHECKER_PORT=8080 \
    CHECKER_DB=/app/var/mailpreflight.db
EXPOSE 8080
USER 10001:10001

# No curl in slim: the stdlib asks /healthz; any error or non-2xx status exits 1 (unhealthy).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('CHECKER_PORT', '8080') + '/healthz', timeout=4)"]

# Exec form: mailpreflight is PID 1 and web.run_app handles SIGTERM for a graceful shutdown.
ENTRYPOINT ["mailpreflight"]
CMD ["serve"]
