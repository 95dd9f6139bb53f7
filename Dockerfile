# smanager's image. Base images are build arguments so the image can be built from local images where the public
# registries are not reachable (scripts/compose-test.sh builds Debian bases from Debian packages):
#   docker build -t smanager .                                            # build from source (release)
#   docker build --target prebuilt -t smanager .                          # take .docker-bin/smanager, built outside
#   docker build --build-arg BASE_IMAGE=… --build-arg RUST_IMAGE=… …
# Stages are ordered so that `--target prebuilt` never needs the Rust image, with the classic builder too.
ARG RUST_IMAGE=rust:1.95-bookworm
ARG BASE_IMAGE=debian:bookworm-slim

# Run: a small image with libpq, as an unprivileged user.
FROM ${BASE_IMAGE} AS runtime-base
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libpq5 ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 --home /data smanager && mkdir -p /data /config \
    && chown smanager /data
COPY config/default.toml /app/config/default.toml
WORKDIR /app

# A binary built outside the image (for a glibc-compatible Debian bookworm host), copied to .docker-bin/smanager.
FROM runtime-base AS prebuilt
COPY .docker-bin/smanager /usr/local/bin/smanager
USER smanager
ENTRYPOINT ["/usr/local/bin/smanager"]
CMD ["run"]

# Build: the whole crate in release mode.
FROM ${RUST_IMAGE} AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY migrations migrations
RUN cargo build --release --locked --bin smanager

FROM runtime-base AS runtime
COPY --from=build /src/target/release/smanager /usr/local/bin/smanager
USER smanager
ENTRYPOINT ["/usr/local/bin/smanager"]
CMD ["run"]
