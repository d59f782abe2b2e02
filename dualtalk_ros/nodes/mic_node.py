"""Microphone capture to `AudioChunk`, stamped with the capture time of the first sample.

Each buffer is measured from PortAudio's ADC time (input latency included), mapped onto the
node's clock, not from the time the buffer reached Python; the published stamp then follows the
sample count from those measurements (`CaptureClock`): a callback run late under load makes its
measurement late, and DualTalk, which aligns the robot's and the partner's audio by these stamps,
must see the contiguous stream the sound card recorded, not the callback's jitter.
"""
from __future__ import annotations

import os
import queue
import sys
import threading
from typing import Any

import numpy as np
from rclpy.node import Node
from rclpy.time import Time

from dualtalk_msgs.msg import AudioChunk
from dualtalk_ros.bridge.capture_clock import CaptureClock, bounded_measurement_ns
from dualtalk_ros.nodes import node_main
from dualtalk_ros.bridge.node_settings import MicSettings
from dualtalk_ros.nodes.ros_parameters import NodeSettings
from dualtalk_ros.nodes.qos import SENSOR

DTYPES = {"S16LE": "int16", "F32LE": "float32"}
# Counters that mean audio or its timing was lost: warned about once, then counted. Stamp
# corrections are not among them: every start finds its first measurement a little late.
WARNED = ("dropped", "overflows", "fallback_stamps", "implausible_adc_times", "reanchors")


def _device(value: str) -> Any:
    value = value.strip()
    if not value:
        return None
    return int(value) if value.isdigit() else value


class MicNode(Node):
    """sounddevice capture thread -> bounded queue -> publisher thread."""

    def __init__(self) -> None:
        super().__init__("mic_node")
        self.s: MicSettings = NodeSettings(self, "mic_node").current  # all read-only
        self.pub = self.create_publisher(AudioChunk, "audio", SENSOR)
        self.chunks: queue.Queue = queue.Queue(maxsize=self.s.queue_chunks)
        self.published = 0
        self.dropped = 0
        self.overflows = 0
        self.fallback_stamps = 0
        self.implausible_adc_times = 0
        self.callback_errors = 0
        self._latency_ns = 0  # the stream's declared input latency, set before it starts
        self.capture_clock = CaptureClock(self.s.sample_rate)  # used by the audio thread only
        self._stop = threading.Event()
        self.stream = self._open_stream()  # before the publisher: a failed start leaves no thread
        self._publisher = threading.Thread(target=self._publish_loop, daemon=True)
        self._publisher.start()
        self.get_logger().info(
            f"capturing {self.s.channels} ch at {self.s.sample_rate} Hz from "
            f"{self.stream.device!r}, {self.s.chunk_samples} samples per chunk "
            f"(input latency {self.stream.latency * 1000:.1f} ms)"
        )

    def _open_stream(self):
        """The started capture stream, or OSError saying which device failed and what to do
        (node_main prints it as one line and exits 2)."""
        try:
            import sounddevice as sd  # imported here: PortAudio is only needed by this node
        except OSError as exc:  # sounddevice raises OSError when libportaudio is missing
            raise OSError(f"no audio input: {exc} (install libportaudio2)") from None
        try:
            stream = sd.InputStream(
                samplerate=self.s.sample_rate, channels=self.s.channels,
                dtype=DTYPES[self.s.encoding], blocksize=self.s.chunk_samples,
                device=_device(self.s.device), callback=self._on_audio,
            )
            # Read by the audio thread, whose first call can come before `self.stream` is set.
            self._latency_ns = int(stream.latency * 1e9)
            stream.start()
        except (sd.PortAudioError, ValueError) as exc:  # ValueError: no device matches a name
            which = repr(self.s.device) if self.s.device else "the default device"
            raise OSError(f"no audio input from {which}: {exc} (set the mic_node parameter "
                          "'device', or start without the mic: use_mic:=false)") from None
        return stream

    def _on_audio(self, indata: np.ndarray, frames: int, time_info, status) -> None:
        """PortAudio thread: stamp and queue only; never block here. An exception would stop
        capture for good (sounddevice aborts the stream): count it, log once, carry on."""
        try:
            self._capture(indata, frames, time_info, status)
        except Exception as exc:  # noqa: BLE001 - the audio thread's outermost level
            self.callback_errors += 1
            if self.callback_errors == 1:
                self.get_logger().error(f"audio callback failed (counting): {exc!r}")

    def _capture(self, indata: np.ndarray, frames: int, time_info, status) -> None:
        now_ns = self.get_clock().now().nanoseconds
        if status.input_overflow:
            self.overflows += 1
        adc, current = time_info.inputBufferAdcTime, time_info.currentTime
        age_ns = int((current - adc) * 1e9) if adc > 0 and current > 0 else None
        if age_ns is None:  # some host APIs report no ADC time: arrival, buffer and latency
            self.fallback_stamps += 1
        measured_ns, plausible = bounded_measurement_ns(
            now_ns, age_ns, frames, self.s.sample_rate, self._latency_ns)
        self.implausible_adc_times += not plausible
        stamp_ns = self.capture_clock.stamp(measured_ns, frames, bool(status.input_overflow))
        try:
            self.chunks.put_nowait((stamp_ns, indata.copy()))
        except queue.Full:
            self.dropped += 1

    def _publish_loop(self) -> None:
        warned = set()
        while not self._stop.is_set():
            try:
                stamp_ns, data = self.chunks.get(timeout=0.1)
            except queue.Empty:
                continue
            if not self.context.ok():
                return  # shutting down: nothing to publish to
            self.pub.publish(self._message(stamp_ns, data))
            self.published += 1
            counts = self.counters()
            for name in WARNED:
                if counts[name] and name not in warned:
                    warned.add(name)
                    self.get_logger().warning(f"audio capture: {name} > 0 (counting)")

    def counters(self) -> dict[str, int]:
        """What capture counted: chunks dropped (queue full), PortAudio overflows, buffers
        without an ADC time or with one older than the stream's latency allows, failed
        callbacks (logged at the first), and the timeline's re-anchors (samples lost) and
        corrections (a late anchor moved earlier): the only steps that are not one chunk."""
        return {"dropped": self.dropped, "overflows": self.overflows,
                "fallback_stamps": self.fallback_stamps,
                "implausible_adc_times": self.implausible_adc_times,
                "callback_errors": self.callback_errors,
                "reanchors": self.capture_clock.reanchors,
                "stamp_corrections": self.capture_clock.corrections}

    def _message(self, stamp_ns: int, data: np.ndarray) -> AudioChunk:
        msg = AudioChunk()
        msg.header.stamp = Time(nanoseconds=stamp_ns).to_msg()
        msg.header.frame_id = self.s.frame_id
        msg.sample_rate = self.s.sample_rate
        msg.channels = self.s.channels
        msg.encoding = self.s.encoding
        msg.data = data.astype("<" + data.dtype.str[1:], copy=False).tobytes()
        return msg

    def close(self) -> None:
        """Stop capture within 2 s: a stalled audio server can block PortAudio's close forever,
        and a node must still exit on Ctrl-C."""
        self._stop.set()
        self._publisher.join(timeout=1.0)
        totals = ", ".join(f"{name} {count}" for name, count in self.counters().items())
        line = f"capture ended: {self.published} chunks published, {totals}"
        if self.context.ok():
            self.get_logger().info(line)
        else:  # a stop signal shut ROS's logging to /rosout down: stderr, as node_main does
            sys.stderr.write(f"[INFO] [{self.get_name()}]: {line}\n")
        closer = threading.Thread(target=self._close_stream, daemon=True)
        closer.start()
        closer.join(timeout=2.0)
        if closer.is_alive():
            self.get_logger().error("the audio device did not close within 2 s; exiting anyway")
            os._exit(1)  # PortAudio's exit handler would block on the same stuck stream

    def _close_stream(self) -> None:
        self.stream.abort()  # stop() waits for buffers a stalled source may never fill
        self.stream.close()


def main(args: list[str] | None = None) -> None:
    node_main.run(MicNode, args)


if __name__ == "__main__":
    main()
