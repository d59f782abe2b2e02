"""The DualTalk node: own voice, partner voice and partner face in; 25 fps face and head pose out.

Receiving is separate from processing: callbacks only queue messages (bounded, drops counted); a
timer on ROS time (so `use_sim_time` replays work) asks for one engine hop; a worker thread feeds
the queued messages to `dualtalk_core.streaming.StreamingEngine`, runs it and publishes. When
inference is slower than the hop, requests are skipped and counted, never queued without bound.
Bad input is logged once per kind, counted in /diagnostics, and dropped; the face keeps going.
"""
from __future__ import annotations

import collections
import queue
import threading
import time
from typing import Any

import torch

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node

from dualtalk_core.config_files import from_dict
from dualtalk_core.heap_tuning import keep_freed_memory
from dualtalk_core.streaming.engine import Frame, StreamConfig, StreamingEngine
from dualtalk_msgs.msg import AudioChunk, FaceCoefficients
from dualtalk_ros.bridge import messages
from dualtalk_ros.nodes import node_main
from dualtalk_ros.nodes import ros_parameters
from dualtalk_ros.nodes.node_health import NodeHealth
from dualtalk_ros.nodes.audio_common_inputs import AudioCommonInputs
from dualtalk_ros.nodes.qos import RELIABLE, SENSOR


DESCRIPTIONS = {
    "model": "model folder (model.safetensors + config.json) or DualTalk.pth; '' = the shipped "
             "default model; 'lite'/'official' = random weights (tests and timing only)",
    "device": "inference device: auto (CUDA when available), cpu or cuda",
    "torch_threads": "CPU intra-op threads of the model; 0 = torch's default (one per core). "
                     "1 avoids oversubscribing cores shared with the node's own threads",
    "rig": "expected output rig (arkit52, flame56); '' = the model's own; a mismatch is an error",
    "frame_id": "header.frame_id of the published face and head pose",
    "stream": "streaming engine setting (dualtalk_core.streaming.StreamConfig field of that name)",
    "inputs": "input handling: max_clock_skew_s (stamps further from now are dropped), "
              "queue_messages (bound of the receive queue), audio_common.* (format of "
              "audio_common_msgs/AudioData inputs)",
    "output": "delay_ms: each frame is published at its stamp + delay_ms on the node clock, a "
              "steady 25 fps stream (0 = as soon as computed, in bursts of a hop; frames "
              "computed after their slot go out at once and are counted as late); "
              "pacing_period_ms: how often due frames are checked",
    "diagnostics": "/diagnostics: period_s, input_stale_s, inference_warn_ratio and "
                   "inference_error_ratio (of the hop time)",
}


def stream_config(values: dict[str, Any], device: str) -> StreamConfig:
    """`stream.*` parameters -> StreamConfig (lookahead_ms < 0 means the model's own bound)."""
    flat = ros_parameters.section(values, "stream")
    nested: dict[str, Any] = {"smoothing": ros_parameters.section(
        flat, "smoothing"), "device": device}
    nested.update({k: v for k, v in flat.items() if not k.startswith("smoothing.")})
    if nested.get("lookahead_ms") is not None and nested["lookahead_ms"] < 0:
        nested["lookahead_ms"] = None
    return from_dict(StreamConfig, nested)


class DualTalkNode(Node):
    def __init__(self) -> None:
        super().__init__("dualtalk_node")
        self.p = ros_parameters.declare(self, "dualtalk_node", DESCRIPTIONS)
        if int(self.p["torch_threads"]) < 0:
            raise ValueError(
                f"parameter torch_threads must be >= 0, got {self.p['torch_threads']}")
        if int(self.p["torch_threads"]) > 0:
            torch.set_num_threads(int(self.p["torch_threads"]))
        config = stream_config(self.p, str(self.p["device"]))
        self.engine = StreamingEngine.load(str(self.p["model"]) or None, config)
        self.rig = self.engine.rig
        if self.p["rig"] and self.p["rig"] != self.rig.name:
            raise ValueError(f"parameter rig={self.p['rig']!r} but the model outputs "
                             f"{self.rig.name!r}; set rig:='' or load a {self.p['rig']} model")
        self.hop_s = config.hop_ms / 1000.0
        self.health = NodeHealth(self, self.p, self.hop_s)
        self.inbox: collections.deque = collections.deque()
        self.inbox_lock = threading.Lock()
        self.requests: queue.Queue = queue.Queue(maxsize=1)
        self.first_hop: float | None = None  # ROS time of the first hop (anchoring silence)
        self.face_pub = self.create_publisher(FaceCoefficients, "face", RELIABLE)
        self.pose_pub = self.create_publisher(PoseStamped, "head_pose", RELIABLE)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", RELIABLE)
        self.create_subscription(AudioChunk, "self_audio", self._store("self_audio"), SENSOR)
        self.create_subscription(AudioChunk, "partner_audio", self._store("partner_audio"),
                                 SENSOR)
        self.create_subscription(FaceCoefficients, "partner_face", self._store("partner_face"),
                                 SENSOR)
        self.audio_common = AudioCommonInputs(self, self.p, self._store)
        self._stop = threading.Event()
        self.worker = threading.Thread(target=self._work, name="dualtalk_inference",
                                       daemon=True)
        self.worker.start()
        self.delay_s = float(self.p["output.delay_ms"]) / 1000.0
        if self.delay_s < 0 or float(self.p["output.pacing_period_ms"]) <= 0:
            raise ValueError("output.delay_ms must be >= 0 and output.pacing_period_ms > 0")
        self.outbox: collections.deque = collections.deque()  # frames waiting for their slot
        if self.delay_s > 0:
            self.create_timer(float(self.p["output.pacing_period_ms"]) / 1000.0, self._on_pace)
        self.create_timer(self.hop_s, self._on_hop)
        self.create_timer(float(self.p["diagnostics.period_s"]), self._on_diagnostics)
        model = self.engine.model
        self.get_logger().info(
            f"model {self.p['model'] or 'default'} ({model.config.front_end} front end, "
            f"rig {self.rig.name}, "
            f"device {model.device}), window {config.window_ms:.0f} ms, hop "
            f"{config.hop_ms:.0f} ms, lookahead {self.engine.lookahead_ms:.0f} ms")

    # ----------------------------------------------------------- receiving: store only
    def _store(self, kind: str):
        def callback(msg: Any) -> None:
            with self.inbox_lock:
                if len(self.inbox) >= int(self.p["inputs.queue_messages"]):
                    self.inbox.popleft()
                    self.health.problem("inbox_overflow", "receive queue full: dropping the "
                                        "oldest message (inference cannot keep up)")
                self.inbox.append((kind, msg, self.get_clock().now().nanoseconds * 1e-9))
        return callback

    def _on_hop(self) -> None:
        try:
            self.requests.put_nowait(self.get_clock().now().nanoseconds * 1e-9)
        except queue.Full:
            self.health.skipped_hops += 1

    # ----------------------------------------------------------- processing: worker thread
    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                now = self.requests.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self._feed(now)
                self._anchor_if_silent(now)
                start = time.perf_counter()
                frames = self.engine.step(now)
                self.health.hop_done(time.perf_counter() - start, len(frames))
                if self.delay_s > 0:
                    self.outbox.extend(frames)  # deque appends are thread-safe
                else:
                    self._publish(frames)
            except Exception as exc:  # noqa: BLE001 - the face must keep going; log and count
                if not self.context.ok():
                    return  # shutting down: nothing to publish to
                self.health.problem("inference_error", f"hop failed: {exc!r}")

    def _anchor_if_silent(self, now: float) -> None:
        """With no audio at all, start the frame grid anyway: the face must never freeze."""
        if self.engine.t0 is not None:
            return
        if self.first_hop is None:
            self.first_hop = now
        if now - self.first_hop >= float(self.p["diagnostics.input_stale_s"]):
            self.engine.start(now)
            self.get_logger().warning("no audio received yet: publishing a listening face "
                                      "from silence and the held partner face")

    def _feed(self, now: float) -> None:
        with self.inbox_lock:
            batch = list(self.inbox)
            self.inbox.clear()
        for kind, msg, arrival in batch:
            try:
                self._push(kind, msg, now, arrival)
            except (ValueError, TypeError) as exc:
                self.health.problem(f"{kind}_invalid", f"{kind}: dropped a message: {exc}")

    def _push(self, kind: str, msg: Any, now: float, arrival: float) -> None:
        if kind == "partner_face":
            values, names, t = messages.face(msg)
            self._check_stamp(kind, t, now)
            self.engine.push_partner_face(values, names, t)
        else:
            if kind.endswith("_raw"):
                samples, rate, t = self.audio_common.decode(msg, arrival)
                kind = kind[: -len("_raw")]
            else:
                samples, rate, t = messages.audio_chunk(msg)
            self._check_stamp(kind, t, now)
            push = self.engine.push_self_audio if kind == "self_audio" else \
                self.engine.push_partner_audio
            push(samples, rate, t)
        self.health.input_seen(kind, t)

    def _check_stamp(self, kind: str, t: float, now: float) -> None:
        problem = messages.stamp_problem(t, now, float(self.p["inputs.max_clock_skew_s"]))
        if problem:
            raise ValueError(f"{problem.replace('_', ' ')}: stamp {t:.3f} s vs now {now:.3f} s "
                             f"(inputs.max_clock_skew_s = {self.p['inputs.max_clock_skew_s']})")

    def _publish(self, frames: list[Frame]) -> None:
        names = list(self.rig.names)
        for frame in frames:
            sec, nanosec = messages.s_to_sec_nanosec(frame.t)
            face = FaceCoefficients()
            face.header.stamp.sec, face.header.stamp.nanosec = sec, nanosec
            face.header.frame_id = str(self.p["frame_id"])
            face.rig = self.rig.name
            face.names = names
            face.values = frame.values.astype(float).tolist()
            pose = PoseStamped()
            pose.header = face.header
            q = frame.head_quaternion
            o = pose.pose.orientation
            o.x, o.y, o.z, o.w = (float(v) for v in q)
            self.face_pub.publish(face)
            self.pose_pub.publish(pose)

    def _on_pace(self) -> None:
        """Publish every frame whose slot (stamp + output.delay_ms) has come."""
        now = self.get_clock().now().nanoseconds * 1e-9
        due = []
        while self.outbox and self.outbox[0].t + self.delay_s <= now:
            due.append(self.outbox.popleft())
        if due:
            late = sum(now - f.t - self.delay_s > 0.02 for f in due)
            if late:
                self.health.problem("late_frames", "frames computed after their presentation "
                                    "slot were published late (raise output.delay_ms)", late)
            self._publish(due)

    def _on_diagnostics(self) -> None:
        now = self.get_clock().now()
        self.diag_pub.publish(self.health.report(now, self.engine))

    def close(self) -> None:
        self._stop.set()
        self.worker.join(timeout=2.0)


def main(args: list[str] | None = None) -> None:
    keep_freed_memory()  # this process runs the model every hop: keep its heap (heap_tuning)
    node_main.run(DualTalkNode, args)


if __name__ == "__main__":
    main()
