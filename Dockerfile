# syntax=docker/dockerfile:1
# The one `taskledger` binary in a small non-root image. Every role runs from
# it (`taskledger api`, `relay`, `project`, `scheduler`, `setup`, ...); the
# page's and GraphiQL's assets are compiled into the binary (include_bytes!),
# so nothing but the binary is copied. Built by .github/workflows/image.yml;
# see docs/deploy.md for building it for Minikube.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
# What building librdkafka (rdkafka-sys, with OpenSSL for TLS and SASL/SCRAM)
# needs. Unpinned on purpose: the release's security updates come with them.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      gcc g++ make perl pkg-config libssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin taskledger \
 && cp target/release/taskledger /usr/local/bin/taskledger

FROM debian:${DEBIAN_RELEASE}-slim
# CA certificates for Kafka over TLS and managed Postgres; OpenSSL for librdkafka.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 taskledger \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin taskledger
COPY --from=build /usr/local/bin/taskledger /usr/local/bin/taskledger
USER 10001:10001
ENV TASKLEDGER_HTTP_ADDR=0.0.0.0:8080
EXPOSE 8080
# Kubernetes probes /healthz and /readyz (deploy/base); the image has no
# HTTP client to run a Docker HEALTHCHECK with, and Kubernetes ignores one.
# checkov:skip=CKV_DOCKER_2:Kubernetes probes /healthz and /readyz; Docker HEALTHCHECK is ignored there
ENTRYPOINT ["taskledger"]
CMD ["api"]
