# syntax=docker/dockerfile:1
# Taskledger's two binaries, each in a small non-root image of its own, built
# by one stage:
#   --target worker  `taskledger-worker`: the worker roles (`relay`,
#                    `project`, `scheduler`, `workers`) and the operators'
#                    commands (`setup`, `republish`, `replay`, `dlq`,
#                    `verify`, `rebuild`), without the GraphQL engine or the
#                    MCP server. Its `setup` leaves out the API's migrations.
#   (the default)    `taskledger`: every role, the API (`taskledger api`)
#                    among them; its `setup` applies every migration. The
#                    page's and GraphiQL's assets are compiled into the
#                    binary (include_bytes!), so nothing but it is copied.
# Built by .github/workflows/image.yml; see docs/deploy.md for building both
# for Minikube.

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
    cargo build --release --locked -p taskledger -p worker \
 && cp target/release/taskledger target/release/taskledger-worker /usr/local/bin/

# What both images run on: CA certificates for Kafka over TLS and managed
# Postgres, OpenSSL for librdkafka, and the unprivileged user.
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 taskledger \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin taskledger
ENV TASKLEDGER_HTTP_ADDR=0.0.0.0:8080
EXPOSE 8080
# Kubernetes probes /healthz and /readyz (deploy/base) in every role; the
# images have no HTTP client to run a Docker HEALTHCHECK with, and Kubernetes
# ignores one.
# checkov:skip=CKV_DOCKER_2:Kubernetes probes /healthz and /readyz; Docker HEALTHCHECK is ignored there

# The worker image: relay, projector and scheduler (deploy/base).
FROM runtime AS worker
COPY --from=build /usr/local/bin/taskledger-worker /usr/local/bin/taskledger-worker
USER 10001:10001
ENTRYPOINT ["taskledger-worker"]
CMD ["workers"]

# The API image (the default): the API and the setup Job (deploy/base).
FROM runtime AS api
COPY --from=build /usr/local/bin/taskledger /usr/local/bin/taskledger
USER 10001:10001
ENTRYPOINT ["taskledger"]
CMD ["api"]
