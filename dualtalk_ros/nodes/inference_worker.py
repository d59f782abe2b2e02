"""The DualTalk node's processing thread: queued messages into the engine, frames out.

The node's callbacks only queue messages and post wake-ups (`requests`); this thread feeds the
queue through `bridge.input_dispatch` into the streaming engine, steps it, and hands the frames
to the pacer's outbox (or publishes them at once with no output delay). It also installs a model
swapped in while running, between two steps. It does nothing while the node is not active.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

from rclpy.serialization import deserialize_message

from dualtalk_core.streaming import Frame
from dualtalk_msgs.msg import AudioChunk, FaceCoefficients
from dualtalk_ros.bridge import messages
from dualtalk_ros.bridge.face_pipeline import FacePipeline

if TYPE_CHECKING:
    from dualtalk_ros.nodes.dualtalk_node import DualTalkNode

IDLE_WAIT_S = 0.2  # the worker re-checks its stop flag at least this often
CLOCK_JUMP_S = 1.0  # ROS time going back further than this: a restarted clock (bag replay)
# Inputs taken serialized: (message type, the size check each passes on arrival)
RAW_INPUTS: dict[str, tuple[Any, Callable[[bytes], None]]] = {
    "self_audio": (AudioChunk, messages.check_audio_size),
    "partner_audio": (AudioChunk, messages.check_audio_size),
    "partner_face": (FaceCoefficients, messages.check_face_size)}
STARTUP_FRAMES = 25  # a stream's first second: its timings do not size the pipeline delay


class InferenceWorker:
    """One thread stepping the node's engine on audio arrival, hops and batch deadlines."""

    def __init__(self, node: DualTalkNode) -> None:
        self.node = node
        self.requests: queue.Queue = queue.Queue(maxsize=1)
        self.busy_since: float | None = None  # when the current step began (monotonic)
        self.first_hop: float | None = None  # ROS time of the first hop (anchoring silence)
        self.last_frame_t: float | None = None  # stamp of the stream's newest frame
        self._clock_s: float | None = None  # the latest ROS time the worker ran at
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._work, name="dualtalk_inference",
                                       daemon=True)

    def start(self) -> None:
        self.thread.start()

    def wake(self, now_s: float) -> bool:
        """Ask for a step at `now_s`; False when one is already pending."""
        try:
            self.requests.put_nowait(now_s)
            return True
        except queue.Full:
            return False

    def stop(self, timeout_s: float) -> None:
        self._stop.set()
        self.thread.join(timeout=timeout_s)

    def _work(self) -> None:
        woken_for = None  # the wake-up the worker last woke itself for
        while not self._stop.is_set():
            node = self.node
            self._swap_if_ready()
            pipe = node.pipe
            wake = self._next_wake(pipe, woken_for) if node.active and pipe else None
            wait_s = IDLE_WAIT_S
            if wake is not None:
                wait_s = min(IDLE_WAIT_S, max(0.0, wake[1] - node.now_s()))
            try:
                now = self.requests.get(timeout=wait_s)
            except queue.Empty:
                if wake is None:
                    continue
                woken_for, now = wake[0], node.now_s()
            if pipe is None or not node.active:
                continue
            self.busy_since = time.monotonic()
            try:
                self._step(pipe, now)
            except Exception as exc:  # noqa: BLE001 - the face must keep going; log and count
                if not node.context.ok():
                    return  # shutting down: nothing to publish to
                node.health.problem("inference_error", f"hop failed: {exc!r}")
            finally:
                self.busy_since = None

    def _swap_if_ready(self) -> None:
        """Install a model loaded in the background; a failure keeps the running one."""
        node = self.node
        try:
            ready = node.swap.take()
            if ready is not None:
                node.swap_in(ready)
        except Exception as exc:  # noqa: BLE001 - the running model must go on regardless
            node.health.count("model_swap_failed")
            node.get_logger().error(f"model swap failed: {exc!r}; keeping the running model")

    def _step(self, pipe: FacePipeline, now: float) -> None:
        node = self.node
        self._follow_clock(pipe, now)
        self._feed(pipe, now)
        self._anchor_if_silent(pipe, now)
        start = time.perf_counter()
        frames = pipe.engine.step(now)
        elapsed = time.perf_counter() - start
        node.health.hop_done(elapsed, len(frames))
        if frames:
            self.last_frame_t = frames[-1].t
        if frames and frames[0].index >= STARTUP_FRAMES:
            pipe.pacer.observe_compute(elapsed)
        self._observe_latency(pipe, frames)
        if pipe.pacer.delay_ms > 0:
            node.outbox.extend(frames)  # deque appends are thread-safe
        else:
            node.publish(frames)

    def _next_wake(self, pipe: FacePipeline, woken_for: tuple[float, bool] | None
                   ) -> tuple[tuple[float, bool], float] | None:
        """((batch due, forced), time) of the worker's next own wake-up, besides audio
        arrivals and hops: when the next batch falls due (frames that need no more audio, such
        as speech published ahead, go out on time), then when its missing audio is overdue (a
        stalled or ended voice: the frames' deadline). None once woken for both."""
        due = pipe.engine.next_batch_due_s()
        if due is None:
            return None
        if woken_for is None or woken_for[0] != due:
            return (due, False), due
        if not woken_for[1]:
            return (due, True), due + pipe.engine.wait_ms / 1000.0
        return None

    def _observe_latency(self, pipe: FacePipeline, frames: list[Frame]) -> None:
        """Feed the pacer the latencies of frames computed from the audio that arrived: a frame
        that waited for missing audio (a stream's end, no input at all) waits by design, and
        the first second of a stream pays for start-up (threads warming up, first messages of
        new DDS matches): neither may raise the delay, which falls only 2 ms a second."""
        stamps = [f.t for f in frames if not f.waited and f.index >= STARTUP_FRAMES]
        if stamps:
            pipe.pacer.observe(self.node.now_s(), stamps)

    def _follow_clock(self, pipe: FacePipeline, now: float) -> None:
        """ROS time went back (a bag replay restarted under use_sim_time): the stream timed by
        the old clock is over; its frames are dropped and the next input starts a new one."""
        last = self._clock_s
        self._clock_s = now if last is None else max(now, last)
        if last is None or now >= last - CLOCK_JUMP_S:
            return
        self._clock_s = now
        pipe.engine.reset()
        self.node.outbox.clear()
        self.first_hop = self.last_frame_t = None
        self.node.health.clock_jumped()
        self.node.get_logger().info(f"ROS time went back {last - now:.1f} s: starting a new "
                                    "stream")

    def _anchor_if_silent(self, pipe: FacePipeline, now: float) -> None:
        """With no audio at all, start the frame grid anyway: the face must never freeze."""
        if pipe.engine.t0 is not None:
            return
        if self.first_hop is None:
            self.first_hop = now
        if now - self.first_hop >= self.node.settings.diagnostics.input_stale_s:
            pipe.engine.start(now)
            self.node.get_logger().warning("no audio received yet: publishing a listening "
                                           "face from silence and the held partner face")

    def _feed(self, pipe: FacePipeline, now: float) -> None:
        node = self.node
        with node.inbox_lock:
            batch = list(node.inbox)
            node.inbox.clear()
        for kind, msg, arrival in batch:
            if arrival > now + CLOCK_JUMP_S:
                node.health.problem("before_clock_jump", f"{kind}: dropped a message received "
                                    "before ROS time went back", key=f"invalid.{kind}")
                continue
            try:
                if kind in RAW_INPUTS:  # serialized (a raw subscription)
                    msg = _deserialize(kind, msg)
                stream, t = pipe.dispatch.push(kind, msg, now, arrival)
            except (ValueError, TypeError) as exc:
                node.invalid(kind, exc)
                continue
            node.health.count(f"accepted.{kind}")
            node.health.input_seen(stream, t)


def _deserialize(kind: str, data: bytes) -> Any:
    msg_type = RAW_INPUTS[kind][0]
    try:
        return deserialize_message(data, msg_type)
    except Exception as exc:  # noqa: BLE001 - whatever the middleware raises, it is bad input
        raise ValueError(f"{msg_type.__name__} does not deserialize: {exc}") from exc
