# The hub's container image: one `hub worker` per container (deploy/compose.yaml,
# deploy/kubernetes/). Build from the repository root:
#
#   docker build -t involvement-hub:dev .
#
# Nothing secret is baked in: HUB_SMTP_PASSWORD and HUB_PSEUDONYM_KEY come from the
# environment at run time (a Kubernetes Secret, or the compose file's development values).

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Every dependency, rocksdict included, ships manylinux wheels: no compiler is needed.
# The distribution holds both packages (involvement_hub, involvement_hub_producer) and the
# `hub` command; the producer's schemas/ is a link to ../../schemas, so schemas/ is copied
# beside it for the build. The source is removed once installed.
WORKDIR /tmp/src
COPY pyproject.toml README.md ./
COPY schemas/ schemas/
COPY producers/ producers/
COPY hub/ hub/
RUN pip install ".[rocksdb]" && rm -rf /tmp/src

# Runtime files, read from fixed paths (not the working directory) so that a mounted
# ConfigMap or a compose bind mount can replace them.
WORKDIR /opt/hub
COPY governance/ governance/
COPY subscriptions/ subscriptions/
COPY schemas/ schemas/

# A fixed uid/gid, so Kubernetes' fsGroup and runAsUser can name it.
RUN groupadd --system --gid 10001 hub \
    && useradd --system --uid 10001 --gid hub --home-dir /var/lib/hub --shell /usr/sbin/nologin hub \
    && mkdir -p /var/lib/hub \
    && chown hub:hub /var/lib/hub

# The defaults suit a developer's checkout; in a container the endpoints must listen on
# every interface (127.0.0.1 would hide them from probes and Prometheus), state lives on
# its own volume, and the configuration files are the ones above.
ENV HUB_METRICS_HOST=0.0.0.0 \
    HUB_METRICS_PORT=9464 \
    HUB_STATE_DIR=/var/lib/hub \
    HUB_POLICY_FILE=/opt/hub/governance/policy.toml \
    HUB_SUBSCRIPTIONS_DIR=/opt/hub/subscriptions \
    HUB_SCHEMA_DIR=/opt/hub/schemas

USER 10001:10001
EXPOSE 9464

# /healthz answers 503 when an agent has died or the worker has stopped committing; it does
# not answer at all during the first table recovery after a start (the endpoints start
# once recovery completes), hence the long start period. Python, because the slim image
# has no curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=300s --retries=4 \
    CMD python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:${HUB_METRICS_PORT:-9464}/healthz', timeout=4)"

CMD ["hub", "worker"]
