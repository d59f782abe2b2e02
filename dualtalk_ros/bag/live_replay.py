"""Live bag evaluation: the real DualTalk node, in its own process on sim time, fed over DDS.

This process plays the bag: it publishes /clock (rosgraph_msgs/Clock) advancing at `rate` times
wall time, publishes each input message (its recorded CDR bytes, unchanged) once the clock
reaches its log time, and records what the node publishes on `face` and `head_pose`, stamping
each with the sim time at which it arrived. Publishing starts only once the node's subscriptions
and publishers have matched ours; after the last message the clock keeps running until the node
has produced the frames up to the ground truth's end.

DDS is kept on this machine: a replayed /clock drives every sim-time node it reaches.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from typing import Any

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from diagnostic_msgs.msg import DiagnosticArray
from rosgraph_msgs.msg import Clock

from dualtalk_core.rigs import get_rig, to_rig_order
from dualtalk_msgs.msg import AudioChunk, FaceCoefficients
from dualtalk_ros.bridge import messages
from dualtalk_ros.bag.bag_files import NS
from dualtalk_ros.bag.bag_scoring import INPUT_KINDS, BagInputs, Predictions
from dualtalk_core.child_processes import stop
from geometry_msgs.msg import PoseStamped

log = logging.getLogger(__name__)

LOCAL_DDS = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "ROS_LOCALHOST_ONLY": "1"}
MATCH_TIMEOUT_S = 120.0  # node start-up: imports and model load on a busy machine
MAX_TAIL_S = 10.0  # sim seconds to wait after the last message for the remaining frames
CLOCK_PERIOD_S = 0.005  # wall time between /clock messages
LEAD_IN_S = 0.2  # sim time the clock runs before the first message
RELIABLE = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
NODE_INPUT_TYPES = {"self_audio": AudioChunk, "partner_audio": AudioChunk,
                    "partner_face": FaceCoefficients}


def start_node(model: str | None, device: str | None, torch_threads: int | None,
               params: list[str] | None = None) -> subprocess.Popen:
    """`python -m dualtalk_ros.nodes.dualtalk_node` with use_sim_time and `params`
    (NAME:=VALUE), on local DDS only."""
    cmd = [sys.executable, "-m", "dualtalk_ros.nodes.dualtalk_node", "--ros-args",
           "-p", "use_sim_time:=true"]
    for param in params or []:
        cmd += ["-p", param]
    if model:
        cmd += ["-p", f"model:={model}"]
    if device:
        cmd += ["-p", f"device:={device}"]
    env = dict(os.environ, **LOCAL_DDS)
    if torch_threads:
        env["OMP_NUM_THREADS"] = str(torch_threads)
    log.info("starting the node: %s", " ".join(cmd))
    return subprocess.Popen(cmd, env=env)


class Player:
    """Publishes /clock and the inputs, records the node's output (one thread: spin_once)."""

    def __init__(self, context: Any, inputs: BagInputs, rate: float) -> None:
        self.inputs, self.rate = inputs, rate
        self.node = rclpy.create_node("dualtalk_bag_player", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.clock_pub = self.node.create_publisher(Clock, "/clock", RELIABLE)
        self.pubs = {kind: self.node.create_publisher(NODE_INPUT_TYPES[kind], kind, RELIABLE)
                     for kind in INPUT_KINDS}
        self.faces: list[tuple[float, Any]] = []
        self.poses: list[tuple[float, Any]] = []
        self.diagnostics: dict[str, str] = {}  # the node's latest /diagnostics key-values
        self.subs = [
            self.node.create_subscription(FaceCoefficients, "face",
                                          lambda m: self.faces.append((self.sim_now(), m)),
                                          RELIABLE),
            self.node.create_subscription(PoseStamped, "head_pose",
                                          lambda m: self.poses.append((self.sim_now(), m)),
                                          RELIABLE)]
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics,
                                      RELIABLE)
        self.sim0 = min(ns for ns, _, _ in inputs.input_events()) / NS - LEAD_IN_S
        self.wall0: float | None = None  # None: the clock holds at sim0

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith("dualtalk"):
                self.diagnostics = {kv.key: kv.value for kv in status.values}

    def sim_now(self) -> float:
        if self.wall0 is None:
            return self.sim0
        return self.sim0 + (time.monotonic() - self.wall0) * self.rate

    def publish_clock(self, now: float | None = None) -> None:
        sec, nanosec = messages.s_to_sec_nanosec(self.sim_now() if now is None else now)
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = sec, nanosec
        self.clock_pub.publish(msg)

    def wait_for_node(self, proc: subprocess.Popen) -> float:
        """Spin until the node's subscriptions and publishers match ours; seconds waited."""
        start = time.monotonic()
        while time.monotonic() - start < MATCH_TIMEOUT_S:
            if proc.poll() == 2:  # unusable model or parameters: the user's input, as offline
                raise ValueError("the DualTalk node refused to start: see its 'cannot start' "
                                 "line above")
            if proc.poll() is not None:
                raise RuntimeError(f"the DualTalk node exited with status {proc.returncode} "
                                   "before it was ready (see its log above)")
            pubs = [self.clock_pub, *self.pubs.values()]
            if all(p.get_subscription_count() > 0 for p in pubs) and \
                    all(s.get_publisher_count() > 0 for s in self.subs):
                return time.monotonic() - start
            self.publish_clock()
            self.executor.spin_once(timeout_sec=0.05)
        raise RuntimeError(f"the DualTalk node did not subscribe to /clock and its inputs "
                           f"within {MATCH_TIMEOUT_S:.0f} s")

    def last_face_t(self) -> float:
        return max((messages.stamp_to_s(m.header.stamp) for _, m in self.faces[-5:]),
                   default=-float("inf"))

    def play(self, proc: subprocess.Popen) -> int:
        """Replay every input at its log time, then run on until the output is complete."""
        events = self.inputs.input_events()
        last_s, target = events[-1][0] / NS, self.inputs.output_target_s()
        self._hold(0.3)  # let the node take the clock's first value before data flows
        self.wall0 = time.monotonic()
        sent, next_clock = 0, 0.0
        while sent < len(events) or (self.last_face_t() < target - 1e-6
                                     and self.sim_now() < last_s + MAX_TAIL_S):
            if proc.poll() is not None:
                raise RuntimeError(f"the DualTalk node died (status {proc.returncode})")
            now = self.sim_now()
            # Messages before the clock that makes them due: a late replay loop must not look
            # to the node like late input (it would fill silence and drop the audio).
            while sent < len(events) and events[sent][0] / NS <= now:
                _, kind, index = events[sent]
                self.pubs[kind].publish(self.inputs.data[kind].raw[index])
                sent += 1
            if time.monotonic() >= next_clock:
                self.publish_clock(now)
                next_clock = time.monotonic() + CLOCK_PERIOD_S
            self.executor.spin_once(timeout_sec=0.001)
        self.wall0, self.sim0 = None, self.sim_now()  # stop the clock; take in-flight output
        self._hold(0.3)
        return sent

    def _hold(self, wall_s: float) -> None:
        end = time.monotonic() + wall_s
        while time.monotonic() < end:
            self.publish_clock()
            self.executor.spin_once(timeout_sec=0.01)

    def predictions(self) -> Predictions:
        if not self.faces:
            raise RuntimeError("the DualTalk node published no face frames")
        rig = get_rig(str(self.faces[0][1].rig))
        preds = Predictions(rig)
        for received, msg in self.faces:
            values, names, t = messages.face(msg)
            preds.add(t, to_rig_order(rig.name, names, values)[0], received)
        return preds


def run_live(inputs: BagInputs, model: str | None = None, rate: float = 1.0,
             device: str | None = None,
             torch_threads: int | None = None,
             node_params: list[str] | None = None) -> tuple[Predictions, dict]:
    """Evaluate the node live on the bag (`node_params`: NAME:=VALUE parameters of the node);
    returns the predictions and run statistics."""
    if not rate > 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    os.environ.update(LOCAL_DDS)  # before rclpy.init: the RMW reads it there
    started = time.monotonic()
    context = rclpy.Context()
    rclpy.init(context=context)
    proc = start_node(model, device, torch_threads, node_params)
    try:
        player = Player(context, inputs, rate)
        ready_s = player.wait_for_node(proc)
        log.info("node ready after %.1f s; replaying at %.2fx", ready_s, rate)
        play_start = time.monotonic()
        sent = player.play(proc)
        play_s = time.monotonic() - play_start
        preds = player.predictions()
    finally:
        stopping = time.monotonic()
        stopped = stop(proc, signal.SIGINT)  # the node's clean exit; a hang is dumped, killed
        stop_s = time.monotonic() - stopping
        rclpy.shutdown(context=context)
    stats = {"wall_s": time.monotonic() - started, "node_ready_s": ready_s, "play_wall_s": play_s,
             "messages_published": sent, "faces_received": len(player.faces),
             "poses_received": len(player.poses), "node_diagnostics": player.diagnostics,
             "node_stopped": stopped, "node_exit_status": proc.returncode,
             "node_stop_s": round(stop_s, 3)}
    log.info("live: %d faces, %d poses received", len(player.faces), len(player.poses))
    return preds, stats
