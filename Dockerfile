# syntax=docker/dockerfile:1
# tradefeed: multi-stage build. The build steps are the same commands CI runs
# (`cargo build --release --locked`).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# make: the bundled jemalloc (the binary's allocator) is built with it.
RUN apt-get update && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
# Dependencies first, in their own layer: rebuilt only when Cargo.toml/Cargo.lock change.
COPY Cargo.toml Cargo.lock build.rs ./
COPY .cargo ./.cargo
COPY benches ./benches
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src ./src
COPY migrations ./migrations
COPY config ./config
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

FROM debian:bookworm-slim
# ca-certificates: HTTPS feeds. Nothing else: the binary embeds SQLite and rustls.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /data --no-create-home tradefeed \
    && mkdir -p /data /etc/tradefeed && chown tradefeed:tradefeed /data
COPY --from=build /src/target/release/tradefeed /usr/local/bin/tradefeed
COPY config/tradefeed.toml /etc/tradefeed/tradefeed.toml
COPY config/topics /etc/tradefeed/topics
ENV TRADEFEED_CONFIG=/etc/tradefeed/tradefeed.toml \
    TRADEFEED_LISTEN=0.0.0.0:8080 \
    TRADEFEED_DB=/data/tradefeed.db
VOLUME ["/data"]
EXPOSE 8080
USER tradefeed
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["tradefeed", "health"]
ENTRYPOINT ["tradefeed"]
CMD ["run"]
