# sluice in a scratch image: one static binary, nothing else.
#   docker build -t sluice .
#   docker run -v /abs/path/config.ini:/prod/reverse-proxy-config.ini -p 8080:8080 sluice
# (the seed's `docker run -v {config}:/prod/reverse-proxy-config.ini` works unchanged)
# The config must listen on host=0.0.0.0 ([frontend], and [admin] if used): the
# default 127.0.0.1 is not reachable through -p. .dockerignore keeps target/ out.
FROM rust:1-alpine AS build
RUN apk add --no-cache musl-dev bash
WORKDIR /src
COPY . .
# scripts/build-static: Alpine's Rust targets musl natively; the release profile (LTO, one
# codegen unit, stripped, panic=abort) gives a fully static binary with `tls` (rustls + ring:
# the [tls] listener and TLS to backends; ring builds its C and assembly with the C compiler
# musl-dev brings). `--install` adds the pinned nightly with rust-src so std is rebuilt
# without its backtrace symboliser, dead code in a stripped binary (2.49 -> 2.14 MB; panic
# messages and locations are still printed). SLUICE_NIGHTLY= (empty) builds on stable.
ARG SLUICE_NIGHTLY=nightly-2026-05-20
RUN SLUICE_NIGHTLY="$SLUICE_NIGHTLY" ./scripts/build-static --install > /tmp/binary \
 && cp "$(cat /tmp/binary)" /sluice && /sluice --version

FROM scratch
COPY --from=build /sluice /sluice
# No /etc/passwd in scratch: a numeric non-root user.
USER 10001:10001
EXPOSE 8080 8081
ENTRYPOINT ["/sluice"]
CMD ["--config", "/prod/reverse-proxy-config.ini"]
