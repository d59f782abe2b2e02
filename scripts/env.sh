# Source me: the project's environment (.venv + colcon install/) with DDS kept on this machine.
# Usage: . scripts/env.sh   (ROS_DOMAIN_ID: a free id in 1..101 claimed for this shell; set it
# before sourcing to choose)
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
# ROS_DOMAIN_ID: one the machine-wide allocator of dualtalk_ros/launching/ros_domains.py does not
# hand out while this shell lives. The shell holds a flock on /tmp/dualtalk-ros-domains/<id>.lock
# (the file the allocator locks) on a descriptor its children inherit; tests and benchmarks
# started from here also skip this shell's ROS_DOMAIN_ID by name. Domains 1..101 only: Fast DDS
# ports of domains >= 102 fall in Linux's ephemeral port range, and 0 is every unset process's.
if [ -z "${DUALTALK_DOMAIN_LOCK_FD:-}" ]; then
  mkdir -p /tmp/dualtalk-ros-domains && { chmod 1777 /tmp/dualtalk-ros-domains 2>/dev/null || true; }
  _start=$(( RANDOM % 101 ))
  for _i in $(seq 0 100); do
    _d="${ROS_DOMAIN_ID:-$(( (_start + _i) % 101 + 1 ))}"   # a domain set by hand: lock it
    _f="/tmp/dualtalk-ros-domains/$_d.lock"
    [ -e "$_f" ] || { : >"$_f"; } 2>/dev/null || true
    if [ -r "$_f" ] && exec {_fd}<"$_f"; then
      if flock -n "$_fd" 2>/dev/null; then
        # The fd variable is not exported: a child shell sourcing me keeps this domain.
        DUALTALK_DOMAIN_LOCK_FD="$_fd" ROS_DOMAIN_ID="$_d"
        break
      fi
      exec {_fd}<&-
    fi
    [ -n "${ROS_DOMAIN_ID:-}" ] && break  # taken by someone else: keep it, as asked, unlocked
  done
  if [ -z "${ROS_DOMAIN_ID:-}" ]; then  # all locked, or no flock(1) (util-linux) here
    ROS_DOMAIN_ID=$(( RANDOM % 101 + 1 ))
    echo "env.sh: no free ROS domain could be locked; using $ROS_DOMAIN_ID unlocked" >&2
  fi
  unset _start _i _d _f _fd
fi
export ROS_DOMAIN_ID
export MPLBACKEND=Agg
unset _here
