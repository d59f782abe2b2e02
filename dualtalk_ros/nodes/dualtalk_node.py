"""The DualTalk node: own voice, partner voice and partner face in; 25 fps face and head pose out.

Receiving is separate from processing: callbacks only queue messages (bounded, drops counted)
and wake the worker when audio arrives; a timer on ROS time (so `use_sim_time` replays work)
wakes it every hop too, for input that is overdue. The worker feeds the queued messages through
`bridge.input_dispatch` into the streaming engine and runs it; frames go out at their stamp + the
pipeline delay (`bridge.output_pacing`, published on `pipeline_delay`). When inference is slower
than the hop, wake-ups are skipped and counted, never queued without bound. Bad input is logged
once per kind, counted in /diagnostics, and dropped; the face keeps going. Parameters:
`bridge.node_settings.DualTalkNodeSettings`, field for field.

A managed (lifecycle) node: `configure` loads and warms the model (`bridge.face_pipeline`),
`activate` subscribes to the inputs and starts publishing, `deactivate` stops both (the stream
ends), `cleanup` drops the model. With `autostart` (the default) it configures and activates
itself, as a plain node. `enable` (std_srvs/SetBool) mutes and unmutes the outputs while the
model keeps listening; a new `model` parameter is loaded in the background and swapped in.
"""
from __future__ import annotations

import collections
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
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn  # noqa: E402
from rclpy.qos_overriding_options import QoSOverridingOptions  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402

from dualtalk_core.audio import resampling  # noqa: E402
from dualtalk_core.streaming import Frame  # noqa: E402
from dualtalk_core.units import FRAME_S  # noqa: E402
from dualtalk_ros.bridge import messages  # noqa: E402
from dualtalk_ros.bridge.face_pipeline import (FacePipeline, build_pipeline,  # noqa: E402
                                               model_problem)
from dualtalk_ros.bridge.node_settings import DualTalkNodeSettings  # noqa: E402
from dualtalk_ros.nodes import node_main  # noqa: E402
from dualtalk_ros.nodes.audio_common_inputs import subscribe_audio_common  # noqa: E402
from dualtalk_ros.nodes.face_outputs import FaceOutputs  # noqa: E402
from dualtalk_ros.nodes.inference_worker import RAW_INPUTS, InferenceWorker  # noqa: E402
from dualtalk_ros.nodes.model_swap import ModelSwap  # noqa: E402
from dualtalk_ros.nodes.node_health import NodeHealth  # noqa: E402
from dualtalk_ros.nodes.qos import LATCHED, RELIABLE, SENSOR, own  # noqa: E402
from dualtalk_ros.nodes.ros_parameters import NodeSettings  # noqa: E402


class DualTalkNode(LifecycleNode):
    def __init__(self) -> None:
        super().__init__("dualtalk_node")
        self.params = NodeSettings(self, "dualtalk_node", apply=self._apply_settings)
        s: DualTalkNodeSettings = self.params.current
        if s.torch_threads > 0:
            torch.set_num_threads(s.torch_threads)
            # numpy's BLAS runs the incremental stepper: the same bound, or its idle worker
            # threads spin on the cores the node shares (measured: extra CPU outside inference).
            threadpool_limits(limits=s.torch_threads)
        self.hop_s = s.stream.hop_ms / 1000.0
        self.health = NodeHealth(self, lambda: self.settings, self.hop_s)
        self.pipe: FacePipeline | None = None  # configured: the model and what it sizes
        self.swap = ModelSwap(self)
        self.lifecycle_state = "unconfigured"
        self.active = False  # inputs subscribed, frames computed
        self.enabled = True  # outputs published (the `enable` service mutes them)
        # of the active state (not rclpy's own `_subscriptions`/`_timers`, which list them all)
        self._active_subscriptions: list[Any] = []
        self._active_timers: list[Any] = []  # hop, pacing
        self.outputs: FaceOutputs | None = None
        self.inbox: collections.deque = collections.deque()
        self.inbox_lock = threading.Lock()
        self.outbox: collections.deque = collections.deque()  # frames waiting for their slot
        self._configure_error = ""
        qos = QoSOverridingOptions.with_default_policies()  # every topic: qos_overrides.*
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", own(RELIABLE),
                                              qos_overriding_options=qos)
        self.delay_pub = self.create_publisher(Duration, "pipeline_delay", own(LATCHED),
                                               qos_overriding_options=qos)
        self.create_service(SetBool, "~/enable", self._on_enable)
        self.worker = InferenceWorker(self)
        self.worker.start()
        self.create_timer(s.diagnostics.period_s, self._on_diagnostics)
        # Off the critical path: the first 44.1/48 kHz chunk would otherwise stall the worker
        # ~0.5 s importing scipy.signal and designing its filter.
        threading.Thread(target=resampling.prepare, name="resampler_warm_up", daemon=True).start()
        if s.autostart:
            self.lifecycle_state = "starting"
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                raise ValueError(self._configure_error or "configure failed")
            self.trigger_activate()
        else:
            self.get_logger().info("unconfigured: waiting for a lifecycle manager's configure")
        self._on_diagnostics()  # ready: say so now rather than a period later

    @property
    def settings(self) -> DualTalkNodeSettings:
        return self.params.current

    # ----------------------------------------------------------- lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load and warm the model: the slow part, done before any input is taken."""
        s = self.settings
        try:
            pipe = build_pipeline(s, lambda: self.settings.inputs.max_clock_skew_s)
        except node_main.START_ERRORS as exc:
            self._configure_error = str(exc)
            if self.lifecycle_state != "starting":  # at start node_main says it in one line
                self.get_logger().error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.outputs = FaceOutputs(self)
        self.install(pipe)
        self.lifecycle_state = "inactive"
        model = pipe.engine.model
        self.get_logger().info(
            f"model {s.model or 'default'} ({model.config.front_end} front end, rig "
            f"{pipe.rig.name}, device {model.device}), window {s.stream.window_ms:.0f} ms, hop "
            f"{s.stream.hop_ms:.0f} ms, lookahead {pipe.engine.lookahead_ms:.0f} ms")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the inputs and start the clocks: a new stream begins."""
        s = self.settings
        self._new_stream()
        # raw: a message's size is checked on arrival, before it is deserialized or queued
        qos = QoSOverridingOptions.with_default_policies()
        self._active_subscriptions = [
            self.create_subscription(msg_type, kind, self._store(kind), own(SENSOR), raw=True,
                                     qos_overriding_options=qos)
            for kind, (msg_type, _) in RAW_INPUTS.items()]
        self._active_subscriptions += subscribe_audio_common(self, s.inputs.audio_common,
                                                             self._store)
        self._active_timers = [
            self.create_timer(s.output.pacing_period_ms / 1000.0, self._on_pace),
            self.create_timer(self.hop_s, self._on_hop)]
        self.active = True
        self.lifecycle_state = "active"
        self._publish_delay()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop listening and publishing; the stream is over (frames not yet out are dropped)."""
        self.active = False
        for timer in self._active_timers:
            self.destroy_timer(timer)
        for subscription in self._active_subscriptions:
            self.destroy_subscription(subscription)
        self._active_subscriptions, self._active_timers = [], []
        self._new_stream()
        self.lifecycle_state = "inactive"
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Drop the model and the output publishers (configure builds them again)."""
        self.swap.cancel()
        self.pipe = None
        if self.outputs is not None:
            self.outputs.destroy()
            self.outputs = None
        self.lifecycle_state = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.active:
            self.on_deactivate(state)
        self.on_cleanup(state)
        self.lifecycle_state = "finalized"
        return TransitionCallbackReturn.SUCCESS

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response
                   ) -> SetBool.Response:
        """Mute (false) or unmute (true) the outputs; the model keeps listening meanwhile, so
        an unmuted face is at once in step with the conversation."""
        self.enabled = bool(request.data)
        response.success = True
        response.message = "outputs enabled" if self.enabled else "outputs muted"
        self.get_logger().info(response.message)
        return response

    def install(self, pipe: FacePipeline) -> None:
        """Make `pipe` the running model at configure (the worker is idle then): a new stream."""
        self.pipe = pipe
        if self.outputs is not None:
            self.outputs.retarget = pipe.retarget
        self._new_stream()
        self._publish_delay()

    def swap_in(self, pipe: FacePipeline) -> None:
        """A model loaded while running takes over between two steps (worker thread): frames
        already computed still go out, and the new model continues the 25 fps grid where the
        old one stopped, so the face never pauses (it hears the audio from here on)."""
        old, last_t = self.pipe, self.worker.last_frame_t
        if (old is not None and old.retarget is not None and pipe.retarget is not None
                and tuple(old.rig.names) == tuple(pipe.rig.names)):
            pipe.retarget = old.retarget  # the joints go on from where they are
        # live parameters changed while it loaded (read-only ones cannot have)
        pipe.engine.reconfigure(self.settings.stream)
        pipe.pacer.configure(self.settings.output)
        pipe.engine.set_wait_cap(pipe.pacer.wait_cap_ms)
        self.pipe = pipe
        if self.outputs is not None:
            self.outputs.retarget = pipe.retarget
        if old is not None and old.engine.t0 is not None and last_t is not None:
            pipe.engine.start(last_t + FRAME_S)
        self._publish_delay()
        self.get_logger().info(f"model {pipe.model or 'default'} in use (rig {pipe.rig.name}, "
                               f"lookahead {pipe.engine.lookahead_ms:.0f} ms)")

    def _new_stream(self) -> None:
        with self.inbox_lock:
            self.inbox.clear()
        self.outbox.clear()
        self.worker.first_hop = self.worker.last_frame_t = None
        if self.pipe is not None:
            self.pipe.engine.reset()
        if self.outputs is not None:
            self.outputs.reset()

    def _apply_settings(self, new: DualTalkNodeSettings) -> None:
        """A live parameter change: the engine and the pacer take their parts; a new model is
        loaded in the background; the rest is read at each use."""
        if new.model != self.settings.model and not self.swap.reverting:
            problem = model_problem(new.model)
            if problem:
                raise ValueError(problem)
            if self.pipe is not None:
                self.swap.start(new)
        pipe = self.pipe
        if pipe is None:
            return
        pipe.engine.reconfigure(new.stream)
        before = pipe.pacer.delay_ms
        pipe.pacer.configure(new.output)
        pipe.engine.set_wait_cap(pipe.pacer.wait_cap_ms)
        if pipe.pacer.delay_ms != before:
            self._publish_delay()

    def _publish_delay(self) -> None:
        """The pipeline delay, latched: play the robot's voice this much after publishing it."""
        if self.pipe is None:
            return
        sec, nanosec = messages.s_to_sec_nanosec(self.pipe.pacer.delay_s)
        self.delay_pub.publish(Duration(sec=sec, nanosec=nanosec))

    # ----------------------------------------------------------- receiving: store only
    def _store(self, kind: str) -> Callable[[Any], None]:
        def callback(msg: Any) -> None:
            self.health.count(f"received.{kind}")
            if kind in RAW_INPUTS:
                try:  # dropped on the thread that allocated it: the heap gives it back whole
                    RAW_INPUTS[kind][1](msg)
                except ValueError as exc:
                    self.invalid(kind, exc)
                    return
            with self.inbox_lock:
                if len(self.inbox) >= self.settings.inputs.queue_messages:
                    dropped = self.inbox.popleft()[0]
                    self.health.problem("inbox_overflow", "receive queue full: dropping the "
                                        "oldest message (inference cannot keep up)",
                                        key=f"inbox_overflow.{dropped}")
                now = self.now_s()
                self.inbox.append((kind, msg, now))
            if kind in ("self_audio", "partner_audio", "self_audio_raw", "partner_audio_raw"):
                # audio may complete a frame: step now rather than at the next hop (a step
                # already pending covers it)
                self.worker.wake(now)
        return callback

    def invalid(self, kind: str, exc: Exception) -> None:
        self.health.problem(f"{kind}_invalid", f"{kind}: dropped a message: {exc}",
                            key=f"invalid.{kind}")

    def _on_hop(self) -> None:
        if not self.worker.wake(self.now_s()):
            # a step is pending: skipped only if the worker has been stuck
            busy = self.worker.busy_since
            if busy is not None and time.monotonic() - busy > self.hop_s:
                self.health.count("skipped_hops")

    # ----------------------------------------------------------- publishing
    def publish(self, frames: list[Frame]) -> None:
        pipe, outputs = self.pipe, self.outputs
        if not frames or pipe is None or outputs is None:
            return
        if not self.enabled:
            self.health.count("muted_frames", len(frames))
            return
        s = self.settings
        outputs.publish(frames, pipe.rig, s.frame_id, s.robot)

    def _on_pace(self) -> None:
        """Publish every frame whose slot (stamp + output.delay_ms) has come."""
        pipe = self.pipe
        if pipe is None:
            return
        now, pacer = self.now_s(), pipe.pacer
        due = []
        try:
            while self.outbox and pacer.due(self.outbox[0].t, now):
                due.append(self.outbox.popleft())
        except IndexError:  # the worker emptied the outbox meanwhile (ROS time went back)
            due = []
        if due:
            # A frame that waited for missing audio may be late by design (a fixed delay waits
            # input_timeout_ms; stale input says why); late frames are those the pipeline
            # itself made late.
            late = (sum(pacer.late(f.t, now) for f in due if not f.waited)
                    if pacer.started else 0)
            if late:
                self.health.problem("late_frames", "frames computed after their presentation "
                                    "slot were published late (raise output.delay_ms)", late)
            self.publish(due)

    def _on_diagnostics(self) -> None:
        pipe = self.pipe
        state = self.lifecycle_state
        if pipe is None or state != "active":
            self.diag_pub.publish(self.health.report_idle(
                self.get_clock().now(), state, "model loaded, no input or output"
                if pipe is not None else "no model loaded, no input or output"))
            return
        before = pipe.pacer.delay_ms
        lateness = pipe.engine.arrival_lateness_ms()
        if lateness is not None:  # a source later than the timeout loses audio anyway
            lateness = min(lateness, self.settings.stream.input_timeout_ms)
        pacing = pipe.pacer.recheck(self.now_s(), lateness)
        pipe.engine.set_wait_cap(pacing.wait_cap_ms)
        if pacing.delay_ms != before:
            # raising is news (lips were late); lowering slews a few ms per check, so it is quiet
            log = self.get_logger().info if pacing.delay_ms > before else self.get_logger().debug
            log(f"pipeline delay {'raised' if pacing.delay_ms > before else 'lowered'} to "
                f"{pacing.delay_ms:.0f} ms (measured frame latency p99 "
                f"{pacing.latency_p99_ms:.0f} ms)")
            self._publish_delay()
        extra = {"lifecycle_state": state, "outputs": "enabled" if self.enabled else "muted",
                 "model": pipe.model or "default"}  # the one running, even while swapping
        if self.outputs is not None:
            extra.update(self.outputs.stats())
        self.diag_pub.publish(self.health.report(self.get_clock().now(), pipe.engine, pacing,
                                                 extra))

    def now_s(self) -> float:
        """The node's clock (sim time under use_sim_time), in seconds."""
        return self.get_clock().now().nanoseconds * 1e-9

    def close(self) -> None:
        self.swap.cancel()
        self.worker.stop(timeout_s=2.0)


def main(args: list[str] | None = None) -> None:
    node_main.run(DualTalkNode, args)


if __name__ == "__main__":
    main()
