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
# Root, on purpose: the socket goes into /var/run/secrets-store-csi-providers on the
# node, a hostPath directory owned by root and shared with the other providers, and
# only its owner may create a file there. The manifests in daemonset/ drop every
# capability, forbid privilege escalation and mount the root filesystem read-only:
# this root owns files but holds no privilege, and can write only to the socket
# directory and /tmp. Where the providers directory belongs to another UID, run the
# image as that UID (runAsUser): the provider writes nowhere else.
USER root
ENTRYPOINT ["vault-csi-provider"]
CMD ["--endpoint=/provider/vault.sock"]
