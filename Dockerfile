# syntax=docker/dockerfile:1
# UserFlow image: the `userflow` command; the Helm chart picks the subcommand
# per Deployment (ingest, consume, api, mcp, operator, migrate).
#   docker build -t userflow:dev .

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: a virtualenv with the project and its dependencies -------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml ./
COPY src/ ./src/
# A regular (not editable) install: the final stage keeps only /opt/venv.
# Every dependency ships manylinux wheels, so no compiler is needed here.
RUN /opt/venv/bin/pip install . \
 && /opt/venv/bin/python -m compileall -q /opt/venv/lib

# --- final: the venv, the migrations, a non-root user, nothing else ----------
FROM ${PYTHON_IMAGE}
ARG UID=10001
RUN groupadd --system --gid "${UID}" userflow \
 && useradd --system --uid "${UID}" --gid userflow --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin userflow
COPY --from=builder /opt/venv /opt/venv
COPY sql/ /app/sql/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UF_SQL_DIR=/app/sql
WORKDIR /app
USER 10001:10001
EXPOSE 8080 8000 8001
ENTRYPOINT ["userflow"]
CMD ["--help"]
