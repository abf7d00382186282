# Switchboard gateway image: build with the Rust toolchain, run on Debian slim
# as a non-root user. `docker build -t switchboard .`
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY bin ./bin
COPY patches ./patches
COPY src ./src
RUN bin/setup && cargo build --release --locked --bin switchboard

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 65532 switchboard \
    && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --shell /usr/sbin/nologin switchboard
COPY --from=build /src/target/release/switchboard /usr/local/bin/switchboard
# The manifests' runAsUser/runAsGroup/fsGroup.
USER 65532:65532
# SSH (and HTTP tunnels) on 2233; the admin endpoint on 9102 (set
# [admin] listen = "0.0.0.0:9102" in the config so probes can reach it).
EXPOSE 2233 9102
ENTRYPOINT ["/usr/local/bin/switchboard"]
CMD ["serve", "--config", "/etc/switchboard/switchboard.toml"]
