# syntax=docker/dockerfile:1
#
# The cityforge-data image: the release binary on distroless "cc" for Debian 12 (glibc, libgcc,
# CA certificates, tzdata; no shell, no package manager), run as the image's nonroot user, the
# binary as the entrypoint. Build and push (README, "Container image"):
#
#   docker build --build-arg GIT_COMMIT=$(git rev-parse --short=12 HEAD) \
#     -t ghcr.io/smoltech/cityforge-data:0.1.0 .
#   docker push ghcr.io/smoltech/cityforge-data:0.1.0
#
# - The build stage is Debian 12 (bookworm) like the runtime image, so the binary needs no newer
#   glibc than the image has (2.36); tests/ship/image.rs checks the binary's libraries and glibc
#   symbol versions against what the runtime image ships.
# - .dockerignore keeps .git out of the context, so build.rs cannot ask git for the commit:
#   `--version` prints the GIT_COMMIT build argument, or "unknown" without it.
# - The binary reads nothing from the image but CA certificates (for https object stores) and
#   writes nothing outside its output: the root file system can be read-only.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY . .
# Empty means "not given": build.rs then falls back to git (absent here), then "unknown".
ARG GIT_COMMIT=
ENV CITYFORGE_GIT_COMMIT=${GIT_COMMIT}
# The registry and target folders are BuildKit caches: a rebuild recompiles only what changed.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin cityforge-data \
    && cp target/release/cityforge-data /usr/local/bin/cityforge-data

# The tag names the Debian release; pin a digest (@sha256:…) as well where images must be
# reproducible.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG GIT_COMMIT=
LABEL org.opencontainers.image.title="cityforge-data" \
      org.opencontainers.image.description="Streams PostgreSQL data to and from the CityForge export document." \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.revision="${GIT_COMMIT}"
COPY --from=build /usr/local/bin/cityforge-data /usr/local/bin/cityforge-data
# Numeric, so that Kubernetes' runAsNonRoot can verify it (the name "nonroot" it cannot).
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/cityforge-data"]
CMD ["--help"]
