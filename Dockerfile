# Build: the whole crate in release mode.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY migrations migrations
RUN cargo build --release --locked --bin smanager

# Run: a small image with libpq, as an unprivileged user.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 --home /data smanager && mkdir -p /data /config \
    && chown smanager /data
COPY --from=build /src/target/release/smanager /usr/local/bin/smanager
COPY config/default.toml /app/config/default.toml
WORKDIR /app
USER smanager
ENTRYPOINT ["/usr/local/bin/smanager"]
CMD ["run"]
