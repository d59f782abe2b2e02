#!/usr/bin/env bash
# `make bench`: set-up when needed, then every benchmark (core, node over DDS, offline) with DDS
# on localhost; writes bench/results/<date>-<machine>.{json,md} and prints pass/fail per target.
# Arguments go to `python -m bench.run` (e.g. --quick, --sections core).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
unset ROS_DOMAIN_ID  # env.sh picks a random one; each node run takes its own domain besides
# shellcheck disable=SC1091
. scripts/env.sh
echo "[bench] ROS_AUTOMATIC_DISCOVERY_RANGE=$ROS_AUTOMATIC_DISCOVERY_RANGE" \
  "ROS_LOCALHOST_ONLY=$ROS_LOCALHOST_ONLY ROS_DOMAIN_ID=$ROS_DOMAIN_ID"
exec python -m bench.run "$@"
