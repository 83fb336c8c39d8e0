# syntax=docker/dockerfile:1
# The kiln image: one binary for every role. Build it from the workspace root:
#   docker build -f deployments/docker/kiln.Dockerfile --build-arg VERSION=v1.2.3 -t kiln:v1.2.3 .
# It runs the standalone by default (kiln run, data in /data); a split
# deployment passes the role: `serve ingest`, `serve projector`, … (compose,
# the Kubernetes manifests). goreleaser builds the "release" target instead,
# from the binary it compiled.
ARG GO_VERSION=1.26

# A static binary from source, cross-compiled for the target platform.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
ENV CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH GOFLAGS=-buildvcs=false
WORKDIR /src
# The workspace: go.work and every module it lists (.dockerignore trims the rest).
COPY . .
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/kiln ./cli/cmd/kiln

# What runs: distroless static (no shell, no package manager), uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot AS base
ARG VERSION=dev
LABEL org.opencontainers.image.title="kiln" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/kilnhq/kiln" \
      org.opencontainers.image.licenses="Apache-2.0"
# kiln run keeps the embedded NATS and FerretDB data in /data: an empty
# directory owned by nonroot (the image's own home), to mount a volume on.
COPY --from=gcr.io/distroless/static-debian12:nonroot --chown=nonroot:nonroot /home/nonroot /data
ENV KILN_DATA_DIR=/data
# The admin listeners bind loopback by default (they have no auth); in a
# container the published port is the way in, so they listen on all
# interfaces: the standalone's (ADMIN_HOST) and each role's.
ENV ADMIN_HOST=0.0.0.0 \
    INGEST_ADMIN_ADDR=:9101 GATEWAY_ADMIN_ADDR=:9102 PROJECTOR_ADMIN_ADDR=:9103 \
    NOTIFIER_ADMIN_ADDR=:9104 WEBHOOKS_ADMIN_ADDR=:9105 REALTIME_ADMIN_ADDR=:9106
USER nonroot:nonroot
# Public: 8080 (standalone, ingest), 8081 (gateway), 8082 (webhooks),
# 8083 (realtime: Socket.IO), 9090 (gRPC); admin: 9100 (standalone), 9101-9106 (roles).
EXPOSE 8080 8081 8082 8083 9090 9100 9101 9102 9103 9104 9105 9106
# The standalone's readiness; compose gives each role its own admin URL
# (kiln healthcheck http://127.0.0.1:<admin port>/readyz) and Kubernetes
# probes the admin port.
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["kiln", "healthcheck", "http://127.0.0.1:9100/readyz"]
ENTRYPOINT ["kiln"]
CMD ["run"]

# goreleaser: its binary is the build context.
FROM base AS release
COPY kiln /usr/local/bin/

# Default target: the binary built above.
FROM base
COPY --from=build /out/ /usr/local/bin/
