# syntax=docker/dockerfile:1
# kiln-projector image. Build it from the workspace root:
#   docker build -f deployments/docker/projector.Dockerfile --build-arg VERSION=v1.2.3 -t kiln-projector:v1.2.3 .
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
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/kiln-projector ./projector/cmd/projector && \
    go build -trimpath -ldflags "-s -w" -o /out/kiln-healthcheck ./deployments/cmd/kiln-healthcheck

# What runs: distroless static (no shell, no package manager), uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot AS base
ARG VERSION=dev
LABEL org.opencontainers.image.title="kiln-projector" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/kilnhq/kiln" \
      org.opencontainers.image.licenses="Apache-2.0"
# The admin listener binds loopback by default (no auth); the image publishes it.
ENV PROJECTOR_ADMIN_ADDR=:9103
USER nonroot:nonroot
EXPOSE 9103
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["kiln-healthcheck", "http://127.0.0.1:9103/readyz"]
ENTRYPOINT ["kiln-projector"]

# goreleaser: its binaries are the build context.
FROM base AS release
COPY kiln-projector kiln-healthcheck /usr/local/bin/

# Default target: the binaries built above.
FROM base
COPY --from=build /out/ /usr/local/bin/
