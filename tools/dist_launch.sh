#!/usr/bin/env bash
# torchrun for tools/dist_train.sh and tools/dist_test.sh:
#   tools/dist_launch.sh train.py|test.py CONFIG NUM_PROCESSES [tool args]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT. Without CUDA the processes run on
# the CPU over gloo (denseclip.engine.dist).
set -euo pipefail
TOOL=$1
CONFIG=$2
NPROC=$3
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
    "$(dirname "$0")/$TOOL" \
    "$CONFIG" \
    --launcher pytorch "${@:4}"
