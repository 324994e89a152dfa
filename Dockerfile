# syntax=docker/dockerfile:1
# The provider image: `docker build -t <registry>/vault-csi-provider:0.1.0 .`
# (BuildKit, the default builder, is needed for the wheel bind mount below).
ARG PYTHON_IMAGE=python:3.11-slim

# Builder: the project's wheel and a wheel of every runtime dependency.
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY provider ./provider
RUN pip wheel . --wheel-dir /wheels

# Runtime: the wheels installed from the builder stage, without pip's cache and
# without the wheels themselves (bind-mounted, so no layer keeps them). The slim
# base has no compiler; every dependency installs from a prebuilt wheel.
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels vault-csi-provider
# A user of its own, by number (so runAsNonRoot can verify it without a passwd entry).
# The socket goes into the node's providers directory, a root-owned hostPath shared with
# the other providers: the manifests in daemonset/ give that directory this group and
# group write in an init container before the provider starts (see daemonset/README.md,
# which also has an OpenShift SecurityContextConstraints example).
USER 10001:10001
ENTRYPOINT ["vault-csi-provider"]
CMD ["--endpoint=/provider/vault.sock"]
