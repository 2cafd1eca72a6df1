# syntax=docker/dockerfile:1
# A Pictor worker (and checker) node. Build and run (docs/NODE.md, "Running a worker"):
#   docker build -t pictor-worker .
#   docker run -d --name pictor --gpus all -p 4001:4001 -v pictor-data:/data \
#     --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
#     -e PICTOR_CHAIN_RPC_URL=https://rpc.example -e PICTOR_CHAIN_ID=... \
#     -e PICTOR_ESCROW_ADDRESS=0x... -e PICTOR_BOOTSTRAP=/ip4/.../p2p/... pictor-worker
# Settings are PICTOR_* variables (comma-separated lists); arguments replace the
# command after `pictor` (default: run a worker and checker), e.g. `status`.
# The seccomp/apparmor options let bubblewrap make the render sandbox's namespaces;
# without them the node still runs and its capability report says
# "filesystem not isolated" (node/render/sandbox.py). Blender is Debian's 3.4.1, the
# build the network pins ("blender-3.4.1"); it renders on the CPU. Cycles on NVIDIA
# GPUs needs a Blender built with CUDA/OptiX kernels (Debian's is not): see
# docs/RENDERING.md before changing BLENDER_PACKAGE.

FROM python:3.11-slim-bookworm AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY node ./node
COPY protocol ./protocol
COPY coordinator ./coordinator
COPY ledger ./ledger
COPY explorer ./explorer
COPY simulations ./simulations
RUN pip wheel --no-cache-dir --no-deps -w /dist .

FROM python:3.11-slim-bookworm
ARG BLENDER_PACKAGE=blender
# The NVIDIA container runtime mounts the driver and NVML (GPU probe, /metrics) when asked.
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    PICTOR_DATA_DIR=/data \
    PYTHONUNBUFFERED=1
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends "${BLENDER_PACKAGE}" bubblewrap util-linux \
    && rm -rf /var/lib/apt/lists/*
COPY --from=wheel /dist/ /tmp/dist/
RUN pip install --no-cache-dir /tmp/dist/pictor-*.whl && rm -rf /tmp/dist
COPY docs/deploy/container-entrypoint.sh /usr/local/bin/pictor-entrypoint
VOLUME ["/data"]
EXPOSE 4001
ENTRYPOINT ["/usr/local/bin/pictor-entrypoint"]
CMD ["node", "run", "--worker", "--checker", "--listen", "/ip4/0.0.0.0/tcp/4001"]
