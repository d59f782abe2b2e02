"""The DualTalk node: own voice, partner voice and partner face in; 25 fps face and head pose out.

Receiving is separate from processing: callbacks only queue messages (bounded, drops counted)
and wake the worker when audio arrives; a timer on ROS time (so `use_sim_time` replays work)
wakes it every hop too, for input that is overdue. The worker feeds the queued messages through
`bridge.input_dispatch` into the streaming engine and runs it; frames go out at their stamp + the
pipeline delay (`bridge.output_pacing`, published on `pipeline_delay`). When inference is slower
than the hop, wake-ups are skipped and counted, never queued without bound. Bad input is logged
once per kind, counted in /diagnostics, and dropped; the face keeps going. Parameters:
`bridge.node_settings.DualTalkNodeSettings`, field for field.
"""
from __future__ import annotations

import collections
import queue
import sys
import threading
import time
from typing import Any, Callable

from dualtalk_core.child_processes import exit_quietly_on_stop_signals

if __name__ == "__main__" or sys.argv[0].endswith("dualtalk_node"):
    # Started as the node: a stop signal during the ~2 s of imports below exits at once, not
    # with a KeyboardInterrupt traceback (node_main.run installs the node's own handlers).
    exit_quietly_on_stop_signals()

import torch  # noqa: E402 - after the signal handlers, on purpose
from threadpoolctl import threadpool_limits  # noqa: E402
from builtin_interfaces.msg import Duration  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.serialization import deserialize_message  # noqa: E402

from dualtalk_core.audio import resampling  # noqa: E402
from dualtalk_core.heap_tuning import keep_freed_memory  # noqa: E402
from dualtalk_core.streaming import Frame, StreamingEngine  # noqa: E402
from dualtalk_core.units import FRAME_MS  # noqa: E402
from dualtalk_msgs.msg import AudioChunk, FaceCoefficients  # noqa: E402
from dualtalk_ros.bridge import messages  # noqa: E402
from dualtalk_ros.bridge.input_dispatch import InputDispatcher  # noqa: E402
from dualtalk_ros.bridge.node_settings import DualTalkNodeSettings  # noqa: E402
from dualtalk_ros.bridge.output_pacing import OutputPacer  # noqa: E402
from dualtalk_ros.nodes import node_main  # noqa: E402
from dualtalk_ros.nodes.audio_common_inputs import subscribe_audio_common  # noqa: E402
from dualtalk_ros.nodes.node_health import NodeHealth  # noqa: E402
from dualtalk_ros.nodes.qos import LATCHED, RELIABLE, SENSOR  # noqa: E402
from dualtalk_ros.nodes.ros_parameters import NodeSettings  # noqa: E402

IDLE_WAIT_S = 0.2  # the worker re-checks its stop flag at least this often
CLOCK_JUMP_S = 1.0  # ROS time going back further than this: a restarted clock (bag replay)
# Inputs taken serialized: (message type, the size check each passes on arrival)
RAW_INPUTS: dict[str, tuple[Any, Callable[[bytes], None]]] = {
    "self_audio": (AudioChunk, messages.check_audio_size),
    "partner_audio": (AudioChunk, messages.check_audio_size),
    "partner_face": (FaceCoefficients, messages.check_face_size)}
STARTUP_FRAMES = 25  # a stream's first second: its timings do not size the pipeline delay


class DualTalkNode(Node):
    def __init__(self) -> None:
        super().__init__("dualtalk_node")
        self.params = NodeSettings(self, "dualtalk_node", apply=self._apply_settings)
        s: DualTalkNodeSettings = self.params.current
        if s.torch_threads > 0:
            torch.set_num_threads(s.torch_threads)
            # numpy's BLAS runs the incremental stepper: the same bound, or its idle worker
            # threads spin on the cores the node shares (measured: extra CPU outside inference).
            threadpool_limits(limits=s.torch_threads)
        self.engine = StreamingEngine.load(s.model or None, s.stream, device=s.device)
        self.engine.warm_up()  # before the first report: a cold model would skip hops
        self.rig = self.engine.rig
        if s.rig and s.rig != self.rig.name:
            raise ValueError(f"parameter rig={s.rig!r} but the model outputs {self.rig.name!r}; "
                             f"set rig:='' or load a {s.rig} model")
        self.hop_s = s.stream.hop_ms / 1000.0
        self.dispatch = InputDispatcher(self.engine, lambda: self.settings.inputs.max_clock_skew_s,
                                        s.inputs.audio_common)
        self.health = NodeHealth(self, lambda: self.settings, self.hop_s)
        self.inbox: collections.deque = collections.deque()
        self.inbox_lock = threading.Lock()
        self.requests: queue.Queue = queue.Queue(maxsize=1)
        self.first_hop: float | None = None  # ROS time of the first hop (anchoring silence)
        self._clock_s: float | None = None  # the latest ROS time the worker ran at
        self._busy_since: float | None = None  # when the worker's current step began
        self.outbox: collections.deque = collections.deque()  # frames waiting for their slot
        # Steps run when audio arrives, so a frame waits only for its batch of frames.
        self.pacer = OutputPacer(s.output, self.engine.lookahead_ms,
                                 (self.engine.batch_frames - 1) * FRAME_MS,
                                 incremental=self.engine.incremental)
        self.engine.set_wait_cap(self.pacer.wait_cap_ms)  # each frame's deadline
        self._make_io(s)
        self._publish_delay()
        self._stop = threading.Event()
        self.worker = threading.Thread(target=self._work, name="dualtalk_inference",
                                       daemon=True)
        self.worker.start()
        self.create_timer(s.output.pacing_period_ms / 1000.0, self._on_pace)
        self.create_timer(self.hop_s, self._on_hop)
        self.create_timer(s.diagnostics.period_s, self._on_diagnostics)
        self._on_diagnostics()  # ready: say so now rather than a period later
        # Off the critical path: the first 44.1/48 kHz chunk would otherwise stall the worker
        # ~0.5 s importing scipy.signal and designing its filter.
        threading.Thread(target=resampling.prepare, name="resampler_warm_up", daemon=True).start()
        model = self.engine.model
        self.get_logger().info(
            f"model {s.model or 'default'} ({model.config.front_end} front end, rig "
            f"{self.rig.name}, device {model.device}), window {s.stream.window_ms:.0f} ms, hop "
            f"{s.stream.hop_ms:.0f} ms, lookahead {self.engine.lookahead_ms:.0f} ms")

    @property
    def settings(self) -> DualTalkNodeSettings:
        return self.params.current

    def _make_io(self, s: DualTalkNodeSettings) -> None:
        self.face_pub = self.create_publisher(FaceCoefficients, "face", RELIABLE)
        self.pose_pub = self.create_publisher(PoseStamped, "head_pose", RELIABLE)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", RELIABLE)
        self.delay_pub = self.create_publisher(Duration, "pipeline_delay", LATCHED)
        # raw: a message's size is checked on arrival, before it is deserialized or queued
        for kind, (msg_type, _) in RAW_INPUTS.items():
            self.create_subscription(msg_type, kind, self._store(kind), SENSOR, raw=True)
        subscribe_audio_common(self, s.inputs.audio_common, self._store)

    def _apply_settings(self, new: DualTalkNodeSettings) -> None:
        """A live parameter change: the engine and the pacer take their parts; the rest is read
        at each use."""
        self.engine.reconfigure(new.stream)
        if hasattr(self, "pacer"):  # not during start-up
            before = self.pacer.delay_ms
            self.pacer.configure(new.output)
            self.engine.set_wait_cap(self.pacer.wait_cap_ms)
            if self.pacer.delay_ms != before:
                self._publish_delay()

    def _publish_delay(self) -> None:
        """The pipeline delay, latched: play the robot's voice this much after publishing it."""
        sec, nanosec = messages.s_to_sec_nanosec(self.pacer.delay_s)
        self.delay_pub.publish(Duration(sec=sec, nanosec=nanosec))

    # ----------------------------------------------------------- receiving: store only
    def _store(self, kind: str) -> Callable[[Any], None]:
        def callback(msg: Any) -> None:
            self.health.count(f"received.{kind}")
            if kind in RAW_INPUTS:
                try:  # dropped on the thread that allocated it: the heap gives it back whole
                    RAW_INPUTS[kind][1](msg)
                except ValueError as exc:
                    self._invalid(kind, exc)
                    return
            with self.inbox_lock:
                if len(self.inbox) >= self.settings.inputs.queue_messages:
                    dropped = self.inbox.popleft()[0]
                    self.health.problem("inbox_overflow", "receive queue full: dropping the "
                                        "oldest message (inference cannot keep up)",
                                        key=f"inbox_overflow.{dropped}")
                now = self._now_s()
                self.inbox.append((kind, msg, now))
            if kind != "partner_face":
                try:  # audio may complete a frame: step now rather than at the next hop
                    self.requests.put_nowait(now)
                except queue.Full:
                    pass  # the worker is already due to run
        return callback

    def _on_hop(self) -> None:
        try:
            self.requests.put_nowait(self._now_s())
        except queue.Full:  # a step is pending: skipped only if the worker has been stuck
            busy = self._busy_since
            if busy is not None and time.monotonic() - busy > self.hop_s:
                self.health.count("skipped_hops")

    # ----------------------------------------------------------- processing: worker thread
    def _work(self) -> None:
        woken_for = None  # the wake-up the worker last woke itself for
        while not self._stop.is_set():
            wake = self._next_wake(woken_for)
            wait_s = IDLE_WAIT_S
            if wake is not None:
                wait_s = min(IDLE_WAIT_S, max(0.0, wake[1] - self._now_s()))
            try:
                now = self.requests.get(timeout=wait_s)
            except queue.Empty:
                if wake is None:
                    continue
                woken_for, now = wake[0], self._now_s()
            self._busy_since = time.monotonic()
            try:
                self._follow_clock(now)
                self._feed(now)
                self._anchor_if_silent(now)
                start = time.perf_counter()
                frames = self.engine.step(now)
                elapsed = time.perf_counter() - start
                self.health.hop_done(elapsed, len(frames))
                if frames and frames[0].index >= STARTUP_FRAMES:
                    self.pacer.observe_compute(elapsed)
                self._observe_latency(frames)
                if self.pacer.delay_ms > 0:
                    self.outbox.extend(frames)  # deque appends are thread-safe
                else:
                    self._publish(frames)
            except Exception as exc:  # noqa: BLE001 - the face must keep going; log and count
                if not self.context.ok():
                    return  # shutting down: nothing to publish to
                self.health.problem("inference_error", f"hop failed: {exc!r}")
            finally:
                self._busy_since = None

    def _next_wake(self, woken_for: tuple[float, bool] | None
                   ) -> tuple[tuple[float, bool], float] | None:
        """((batch due, forced), time) of the worker's next own wake-up, besides audio
        arrivals and hops: when the next batch falls due (frames that need no more audio, such
        as speech published ahead, go out on time), then when its missing audio is overdue (a
        stalled or ended voice: the frames' deadline). None once woken for both."""
        due = self.engine.next_batch_due_s()
        if due is None:
            return None
        if woken_for is None or woken_for[0] != due:
            return (due, False), due
        if not woken_for[1]:
            return (due, True), due + self.engine.wait_ms / 1000.0
        return None

    def _observe_latency(self, frames: list[Frame]) -> None:
        """Feed the pacer the latencies of frames computed from the audio that arrived: a frame
        that waited for missing audio (a stream's end, no input at all) waits by design, and
        the first second of a stream pays for start-up (threads warming up, first messages of
        new DDS matches): neither may raise the delay, which falls only 2 ms a second."""
        stamps = [f.t for f in frames if not f.waited and f.index >= STARTUP_FRAMES]
        if stamps:
            self.pacer.observe(self._now_s(), stamps)

    def _follow_clock(self, now: float) -> None:
        """ROS time went back (a bag replay restarted under use_sim_time): the stream timed by
        the old clock is over; its frames are dropped and the next input starts a new one."""
        last = self._clock_s
        self._clock_s = now if last is None else max(now, last)
        if last is None or now >= last - CLOCK_JUMP_S:
            return
        self._clock_s = now
        self.engine.reset()
        self.outbox.clear()
        self.first_hop = None
        self.health.clock_jumped()
        self.get_logger().info(f"ROS time went back {last - now:.1f} s: starting a new stream")

    def _anchor_if_silent(self, now: float) -> None:
        """With no audio at all, start the frame grid anyway: the face must never freeze."""
        if self.engine.t0 is not None:
            return
        if self.first_hop is None:
            self.first_hop = now
        if now - self.first_hop >= self.settings.diagnostics.input_stale_s:
            self.engine.start(now)
            self.get_logger().warning("no audio received yet: publishing a listening face "
                                      "from silence and the held partner face")

    def _feed(self, now: float) -> None:
        with self.inbox_lock:
            batch = list(self.inbox)
            self.inbox.clear()
        for kind, msg, arrival in batch:
            if arrival > now + CLOCK_JUMP_S:
                self.health.problem("before_clock_jump", f"{kind}: dropped a message received "
                                    "before ROS time went back", key=f"invalid.{kind}")
                continue
            try:
                if kind in RAW_INPUTS:  # serialized (a raw subscription)
                    msg = _deserialize(kind, msg)
                stream, t = self.dispatch.push(kind, msg, now, arrival)
            except (ValueError, TypeError) as exc:
                self._invalid(kind, exc)
                continue
            self.health.count(f"accepted.{kind}")
            self.health.input_seen(stream, t)

    def _invalid(self, kind: str, exc: Exception) -> None:
        self.health.problem(f"{kind}_invalid", f"{kind}: dropped a message: {exc}",
                            key=f"invalid.{kind}")

    def _publish(self, frames: list[Frame]) -> None:
        names, frame_id = list(self.rig.names), self.settings.frame_id
        for frame in frames:
            sec, nanosec = messages.s_to_sec_nanosec(frame.t)
            face = FaceCoefficients()
            face.header.stamp.sec, face.header.stamp.nanosec = sec, nanosec
            face.header.frame_id = frame_id
            face.rig = self.rig.name
            face.names = names
            face.values = frame.values.astype(float).tolist()
            pose = PoseStamped()
            pose.header = face.header
            o = pose.pose.orientation
            o.x, o.y, o.z, o.w = (float(v) for v in frame.head_quaternion)
            self.face_pub.publish(face)
            self.pose_pub.publish(pose)

    def _on_pace(self) -> None:
        """Publish every frame whose slot (stamp + output.delay_ms) has come."""
        now = self._now_s()
        due = []
        try:
            while self.outbox and self.pacer.due(self.outbox[0].t, now):
                due.append(self.outbox.popleft())
        except IndexError:  # the worker emptied the outbox meanwhile (ROS time went back)
            due = []
        if due:
            # A frame that waited for missing audio may be late by design (a fixed delay waits
            # input_timeout_ms; stale input says why); late frames are those the pipeline
            # itself made late.
            late = (sum(self.pacer.late(f.t, now) for f in due if not f.waited)
                    if self.pacer.started else 0)
            if late:
                self.health.problem("late_frames", "frames computed after their presentation "
                                    "slot were published late (raise output.delay_ms)", late)
            self._publish(due)

    def _on_diagnostics(self) -> None:
        before = self.pacer.delay_ms
        lateness = self.engine.arrival_lateness_ms()
        if lateness is not None:  # a source later than the timeout loses audio anyway
            lateness = min(lateness, self.settings.stream.input_timeout_ms)
        pacing = self.pacer.recheck(self._now_s(), lateness)
        self.engine.set_wait_cap(pacing.wait_cap_ms)
        if pacing.delay_ms != before:
            # raising is news (lips were late); lowering slews a few ms per check, so it is quiet
            log = self.get_logger().info if pacing.delay_ms > before else self.get_logger().debug
            log(f"pipeline delay {'raised' if pacing.delay_ms > before else 'lowered'} to "
                f"{pacing.delay_ms:.0f} ms (measured frame latency p99 "
                f"{pacing.latency_p99_ms:.0f} ms)")
            self._publish_delay()
        self.diag_pub.publish(self.health.report(self.get_clock().now(), self.engine, pacing))

    def _now_s(self) -> float:
        """The node's clock (sim time under use_sim_time), in seconds."""
        return self.get_clock().now().nanoseconds * 1e-9

    def close(self) -> None:
        self._stop.set()
        self.worker.join(timeout=2.0)


def _deserialize(kind: str, data: bytes) -> Any:
    msg_type = RAW_INPUTS[kind][0]
    try:
        return deserialize_message(data, msg_type)
    except Exception as exc:  # noqa: BLE001 - whatever the middleware raises, it is bad input
        raise ValueError(f"{msg_type.__name__} does not deserialize: {exc}") from exc


def main(args: list[str] | None = None) -> None:
    keep_freed_memory()  # this process runs the model every hop: keep its heap (heap_tuning)
    node_main.run(DualTalkNode, args)


if __name__ == "__main__":
    main()
