# syntax=docker/dockerfile:1
# kiln-ingest image. Build it from the workspace root:
#   docker build -f deployments/docker/ingest.Dockerfile --build-arg VERSION=v1.2.3 -t kiln-ingest:v1.2.3 .
# goreleaser builds the "release" target instead, from the binaries it compiled.
ARG GO_VERSION=1.26

# Static binaries from source, cross-compiled for the target platform.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
ENV CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH GOFLAGS=-buildvcs=false
WORKDIR /src
# The workspace: go.work and every module it lists (.dockerignore trims the rest).
COPY . .
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/kiln-ingest ./ingest/cmd/ingest && \
    go build -trimpath -ldflags "-s -w" -o /out/kiln-healthcheck ./deployments/cmd/kiln-healthcheck

# What runs: distroless static (no shell, no package manager), uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot AS base
ARG VERSION=dev
LABEL org.opencontainers.image.title="kiln-ingest" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/kilnhq/kiln" \
      org.opencontainers.image.licenses="Apache-2.0"
# The admin listener binds loopback by default (no auth); the image publishes it.
ENV INGEST_ADMIN_ADDR=:9101
USER nonroot:nonroot
EXPOSE 8080 9101
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["kiln-healthcheck", "http://127.0.0.1:9101/readyz"]
ENTRYPOINT ["kiln-ingest"]

# goreleaser: its binaries are the build context.
FROM base AS release
COPY kiln-ingest kiln-healthcheck /usr/local/bin/

# Default target: the binaries built above.
FROM base
COPY --from=build /out/ /usr/local/bin/
