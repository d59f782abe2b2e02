#!/usr/bin/env bash
# The test suite: set-up when needed, then pytest over test/ with DDS on localhost and a
# per-run ROS domain (tests that start nodes pick their own domain from it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
unset ROS_DOMAIN_ID
# shellcheck disable=SC1091
. scripts/env.sh
echo "[test] ROS_DOMAIN_ID=$ROS_DOMAIN_ID ROS_AUTOMATIC_DISCOVERY_RANGE=$ROS_AUTOMATIC_DISCOVERY_RANGE"
exec python -m pytest test "$@"
