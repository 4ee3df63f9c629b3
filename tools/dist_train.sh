#!/usr/bin/env bash
# Distributed training, mmseg style: tools/dist_train.sh CONFIG NUM_PROCESSES [train.py args]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT (tools/dist_launch.sh).
exec bash "$(dirname "$0")/dist_launch.sh" train.py "$@"
