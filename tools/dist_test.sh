#!/usr/bin/env bash
# Distributed testing, mmseg style: tools/dist_test.sh CONFIG NUM_PROCESSES [test.py args]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT. Without CUDA the processes test on
# the CPU over gloo (tools/test.py).
set -euo pipefail
CONFIG=$1
NPROC=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

PYTHONPATH="$(dirname "$0")/..${PYTHONPATH:+:$PYTHONPATH}" \
torchrun \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --master_port="$PORT" \
    --nproc_per_node="$NPROC" \
    "$(dirname "$0")/test.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
