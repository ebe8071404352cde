# sluice in a scratch image: one static binary, nothing else.
#   docker build -t sluice .
#   docker run -v /abs/path/config.ini:/prod/reverse-proxy-config.ini -p 8080:8080 sluice
# (the seed's `docker run -v {config}:/prod/reverse-proxy-config.ini` works unchanged)
# The config must listen on host=0.0.0.0 ([frontend], and [admin] if used): the
# default 127.0.0.1 is not reachable through -p. .dockerignore keeps target/ out.
FROM rust:1-alpine AS build
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY . .
# Alpine's Rust targets musl natively: the release profile (LTO, one codegen unit,
# stripped, panic=abort) gives a fully static binary. ring builds its C and assembly with
# the C compiler musl-dev brings.
# With `tls` (rustls + ring): the [tls] listener and TLS to backends.
RUN cargo build --release --locked --features tls --bin sluice \
 && ./target/release/sluice --version

FROM scratch
COPY --from=build /src/target/release/sluice /sluice
# No /etc/passwd in scratch: a numeric non-root user.
USER 10001:10001
EXPOSE 8080 8081
ENTRYPOINT ["/sluice"]
CMD ["--config", "/prod/reverse-proxy-config.ini"]
