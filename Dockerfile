# The loyalty engine's gRPC server as an image (`make image`; compose.yaml runs it over Redis).
#
#   builder  builds the wheel from the sources and installs it, with its dependencies, into a
#            virtual environment at /opt/loyalty
#   runtime  python slim + that environment + a non-root user, with the numba kernels compiled
#            at build time into the image's cache, so a container serves seconds after start
#
# Both stages use the same base image: the environment's python is a link to the base's.
ARG PYTHON_IMAGE=python:3.11.14-slim-trixie

FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src
# only what the wheel is built from (.dockerignore keeps everything else out of the context)
COPY pyproject.toml README.md ./
COPY proto/ proto/
COPY engine/ engine/
COPY server/ server/

# The environment gets no pip of its own (the builder's pip installs into it), and its
# bytecode is checked by source hash, not by timestamps a copy may not keep.
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && python -m venv --without-pip /opt/loyalty \
    && python -m pip --python /opt/loyalty/bin/python install --no-cache-dir \
        /wheels/loyalty_engine-*.whl \
    && /opt/loyalty/bin/python -m compileall -q -f --invalidation-mode checked-hash \
        /opt/loyalty/lib


FROM ${PYTHON_IMAGE} AS runtime

# Kernels are compiled for a generic CPU of the architecture, so the cache built here is used
# on any host; numba keys its cache by CPU, and for the host's own CPU model it would compile
# again at every container start (about a minute, per worker).
ARG NUMBA_CPU_NAME=generic

# LOYALTY_HOST 0.0.0.0: reachable from outside the container, which the server allows only
# with API keys (LOYALTY_API_KEYS=key:role,...): without them it refuses to start. Settings are
# variables rather than flags so that the health check reads the same port and TLS settings.
ENV PATH=/opt/loyalty/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NUMBA_CPU_NAME=${NUMBA_CPU_NAME} \
    LOYALTY_NUMBA_CACHE_DIR=/var/cache/loyalty/numba \
    LOYALTY_DATA_DIR=/var/lib/loyalty \
    LOYALTY_HOST=0.0.0.0 \
    LOYALTY_PORT=50051

# The numba cache belongs to the user that serves (uid 10001): numba skips a cache directory
# it cannot write to, and would compile every kernel again somewhere else.
RUN groupadd --system --gid 10001 loyalty \
    && useradd --system --uid 10001 --gid loyalty --home-dir /var/lib/loyalty \
        --shell /usr/sbin/nologin loyalty \
    && install -d -o loyalty -g loyalty -m 0750 /var/lib/loyalty /var/cache/loyalty

COPY --from=builder /opt/loyalty /opt/loyalty
# `loyalty demo` and `serve --demo` read the demo programme from site-packages/examples
COPY examples/ /opt/loyalty/lib/python3.11/site-packages/examples/
COPY --chmod=0755 deploy/healthcheck.py /opt/loyalty/bin/loyalty-healthcheck

USER 10001:10001
WORKDIR /var/lib/loyalty

# compile every kernel now, as the serving user, into $LOYALTY_NUMBA_CACHE_DIR
RUN loyalty warmup \
    && test -n "$(find "$LOYALTY_NUMBA_CACHE_DIR" -name '*.nbi')"

# gRPC; Prometheus metrics (`--metrics-port 9464`); the console and JSON API (`--http-port 8080`)
EXPOSE 50051 9464 8080

# grpc.health.v1.Health/Check on the local port: SERVING once a rule set is active and the
# kernels are warm; the start period covers a compile if the cache above cannot be used
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
    CMD ["loyalty-healthcheck"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["loyalty", "serve"]
CMD []
