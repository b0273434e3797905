# faceprint-server image. Build: docker build -t faceprint .
# Run:   docker run -p 8080:8080 -v faceprint-data:/data \
#            -e FACEPRINT_AUTH__ADMIN_KEYS="$(openssl rand -hex 32)" faceprint
# The image listens on 0.0.0.0 and ships no API key: without one it refuses to start
# (FACEPRINT_AUTH__ALLOW_OPEN=true serves an open API on purpose).
# Configuration is by FACEPRINT_<SECTION>__<KEY> environment variables only (see
# faceprint.example.toml); scripts/check-dockerfile.sh checks this file without Docker.

# --- build: the official Rust image, the locked dependency set ---------------------------
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
# Cargo reads every target the manifest declares, benches included.
COPY benches ./benches
COPY migrations ./migrations
COPY src ./src
RUN cargo build --release --locked --bin faceprint-server

# --- runtime: slim Debian, non-root --------------------------------------------------------
FROM debian:bookworm-slim AS runtime
RUN groupadd --system --gid 10001 faceprint \
 && useradd --system --uid 10001 --gid faceprint --home-dir /app --shell /usr/sbin/nologin faceprint \
 && mkdir -p /data \
 && chown faceprint:faceprint /data
WORKDIR /app
COPY --from=build /src/target/release/faceprint-server /usr/local/bin/faceprint-server
COPY models ./models
# Migrations are compiled into the binary and run at start-up; the SQL ships alongside
# for reference (and for operators who migrate PostgreSQL by hand).
COPY migrations ./migrations
ENV FACEPRINT_SERVER__BIND=0.0.0.0:8080 \
    FACEPRINT_DATABASE__URL=sqlite:///data/faceprint.db \
    FACEPRINT_MODEL__PATH=/app/models/default.safetensors \
    RUST_LOG=info
VOLUME ["/data"]
EXPOSE 8080
USER faceprint:faceprint
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["faceprint-server", "healthcheck"]
ENTRYPOINT ["faceprint-server"]
CMD ["serve"]
