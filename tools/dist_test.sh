#!/usr/bin/env bash
# Distributed testing, mmseg style: tools/dist_test.sh CONFIG NUM_PROCESSES [test.py args]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT (tools/dist_launch.sh).
exec bash "$(dirname "$0")/dist_launch.sh" test.py "$@"
