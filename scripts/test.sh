#!/usr/bin/env bash
# The test suite: set-up when needed, then pytest over test/ with DDS on localhost. env.sh claims
# this run's own ROS_DOMAIN_ID in 1..101 (a flock pytest inherits through exec); every test that
# starts nodes claims a further domain from the same allocator (dualtalk_ros/launching/ros_domains.py),
# which skips locked domains and this run's ROS_DOMAIN_ID, so no two runs ever share a domain.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
unset ROS_DOMAIN_ID DUALTALK_DOMAIN_LOCK_FD
# shellcheck disable=SC1091
. scripts/env.sh
echo "[test] ROS_DOMAIN_ID=$ROS_DOMAIN_ID ROS_AUTOMATIC_DISCOVERY_RANGE=$ROS_AUTOMATIC_DISCOVERY_RANGE"
exec python -m pytest test "$@"
