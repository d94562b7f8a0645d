# genq: one image with all four programs (genq-api, genq-worker,
# genq-provsim, genqctl). docker-compose.yml picks the program per service.
# Build stage: the same Debian 12 packages scripts/run installs, Release build.
FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config libuv1-dev libhiredis-dev libcurl4-openssl-dev \
      libcjson-dev libpq-dev libcmocka-dev libssl-dev node-llhttp ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Sources only (never a local build/ or .genq/ state folder).
COPY CMakeLists.txt .clang-format ./
COPY cmake cmake
COPY common common
COPY schema schema
COPY api api
COPY worker worker
COPY provsim provsim
COPY ctl ctl
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DGENQ_TESTS=OFF \
 && cmake --build /build -j"$(nproc)" --target genq-api genq-worker genq-provsim genqctl

# Runtime stage: the shared libraries, plus curl (health checks) and openssl
# (the dev signing key the compose file generates once).
FROM debian:12
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libuv1 libhiredis0.14 libcurl4 libcjson1 libpq5 libssl3 ca-certificates curl openssl \
 && rm -rf /var/lib/apt/lists/*
# Named volumes mounted on these folders start with this ownership.
RUN useradd --system --uid 10001 --home-dir /var/lib/genq genq \
 && mkdir -p /var/lib/genq/storage /var/lib/genq/keys \
 && chown -R genq:genq /var/lib/genq
COPY --from=build /build/genq-api /build/genq-worker /build/genq-provsim /build/genqctl /usr/local/bin/
USER genq
WORKDIR /var/lib/genq
# genq-api (GENQ_API_LISTEN; its GET /metrics too), a worker's GET /metrics
# (GENQ_METRICS_LISTEN in docker-compose.yml)
EXPOSE 8080 9100
CMD ["genq-api"]
