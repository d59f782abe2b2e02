# Source me: the project's environment (.venv + colcon install/) with DDS kept on this machine.
# Usage: . scripts/env.sh   (ROS_DOMAIN_ID defaults to a random id per shell; set it to choose)
_here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
set +u
# shellcheck disable=SC1091
. "$_here/.venv/bin/activate"
if [ -n "${ROS_DISTRO:-}" ] && [ -f "/opt/ros/$ROS_DISTRO/setup.bash" ]; then
  . "/opt/ros/$ROS_DISTRO/setup.bash"
fi
# shellcheck disable=SC1091
. "$_here/install/setup.bash"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST   # Jazzy/Kilted
export ROS_LOCALHOST_ONLY=1                      # older distributions
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( (RANDOM % 90) + 10 ))}"
export MPLBACKEND=Agg
unset _here
