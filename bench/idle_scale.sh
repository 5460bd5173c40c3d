#!/usr/bin/env bash
# Idle-scale probe: a real `Server` with N idle `Client`s in another process on loopback; prints
# bytes per idle server connection and per idle client, and `Server::update` mean/p99/max at a
# 60 Hz frame (the method is in legume-net/benches/idle_scale.rs's header; figures in
# docs/PERFORMANCE.md). Linux only (reads /proc/self/status).
#
#   bash bench/idle_scale.sh                      # N = 0, 100, 1000, 10000; 2 reps each (about 3 minutes)
#   NS=0,1000 REPS=3 bash bench/idle_scale.sh     # a subset
#
# Environment: NS (comma-separated peer counts), REPS, PORT (first UDP port; one per run),
# FRAME_US (server frame period, default 16667: 60 Hz), MEASURE (seconds timed per run).
# JSON lines (one per process) then a markdown table of medians go to stdout.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true # one socket per client
exec cargo bench -q -p legume-net --bench idle_scale -- sweep \
    --ns "${NS:-0,100,1000,10000}" --reps "${REPS:-2}" --port "${PORT:-41000}" \
    --sleep-us "${FRAME_US:-16667}" --measure "${MEASURE:-5}"
