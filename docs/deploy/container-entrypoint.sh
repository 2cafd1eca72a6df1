#!/bin/sh
# The worker image's entrypoint: make the node's keys on first start (the data dir is
# a volume, so they survive the container), then run pictor with the given arguments.
set -eu
data="${PICTOR_DATA_DIR:-/data}"
if [ ! -f "$data/node.key" ]; then
    pictor init --data-dir "$data"
fi
exec pictor "$@" --data-dir "$data"
