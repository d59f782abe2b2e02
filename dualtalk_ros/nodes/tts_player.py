"""An example speech player that keeps the robot's voice in step with its face.

The face node publishes each frame at its stamp + the pipeline delay (latched on
`pipeline_delay`). A player that publishes its speech on `self_audio` as it hands it over
(stamped now) and plays it `pipeline_delay` later makes the sound and the lips of every moment
meet: audio stamped t is heard at t + delay, and its frame is shown at t + delay. This node does
that for a WAV file: it waits for the delay, streams the speech (and silence around it, as an
output stream does), and plays it the delay after the first chunk's stamp (minus the output
device's latency). Speech chunks are stamped on the file's own timeline (first stamp + their
offset), as they will be heard: a late timer tick makes a chunk late, never misplaced. It
publishes the time playback started on `playback_start` (latched) so the sync can be measured.

With `ahead_s` > 0 it publishes speech up to that far ahead of its stamps, as a TTS that
synthesises ahead can: the stamps (and so the playback time) do not change, the face simply
has the audio before it needs it, and frames never wait for a chunk in transit.
"""
from __future__ import annotations

import threading
from typing import Any

import numpy as np
from builtin_interfaces.msg import Duration, Time
from rclpy.node import Node

from dualtalk_core.audio.wav_files import read_wav
from dualtalk_core.units import SAMPLE_RATE_HZ, float_to_s16
from dualtalk_msgs.msg import AudioChunk
from dualtalk_ros.bridge import messages
from dualtalk_ros.bridge.node_settings import TtsPlayerSettings
from dualtalk_ros.nodes import node_main
from dualtalk_ros.nodes.qos import LATCHED, SENSOR
from dualtalk_ros.nodes.ros_parameters import NodeSettings


# Chunks published per tick at most: speech gets ahead_s early at 4x real time, gently enough
# for best-effort subscription queues (the face node's is 50 deep).
BURST_CHUNKS = 4


class TtsPlayer(Node):
    def __init__(self) -> None:
        super().__init__("tts_player")
        self.s: TtsPlayerSettings = NodeSettings(self, "tts_player").current  # read-only
        self.audio = read_wav(self.s.wav) if self.s.wav else np.zeros(0, np.float32)
        self.delay_s: float | None = None
        self.first_stamp_ns: int | None = None
        self.next_stamp_ns: int | None = None  # end of the last published chunk
        self.sent = 0  # samples published
        self.audio_pub = self.create_publisher(AudioChunk, "self_audio", SENSOR)
        self.start_pub = self.create_publisher(Time, "playback_start", LATCHED)
        self.create_subscription(Duration, "pipeline_delay", self._on_delay, LATCHED)
        self.started_ns = self.get_clock().now().nanoseconds
        self.timer = self.create_timer(self.s.chunk_samples / SAMPLE_RATE_HZ, self._on_tick)
        self.get_logger().info(f"{len(self.audio) / SAMPLE_RATE_HZ:.1f} s of speech from "
                               f"{self.s.wav or 'nothing'}; waiting for pipeline_delay")

    def _on_delay(self, msg: Duration) -> None:
        self.delay_s = messages.stamp_to_s(msg)  # a Duration: the same two fields

    def _on_tick(self) -> None:
        """Publish speech once the delay is known (or waited for), up to ahead_s before its
        stamps; silence before and after it (`idle_silence`) in real time."""
        now_ns = self.get_clock().now().nanoseconds
        n = self.s.chunk_samples
        if self.sent < len(self.audio) and self._ready(now_ns):
            for _ in range(BURST_CHUNKS):
                started = self.first_stamp_ns is not None
                stamp = self.next_stamp_ns if started else self._next_stamp(now_ns)
                assert stamp is not None
                if self.sent >= len(self.audio) or (
                        started and stamp - now_ns > self.s.ahead_s * 1e9 + self._chunk_ns / 2):
                    break
                chunk = self.audio[self.sent:self.sent + n]
                if self.first_stamp_ns is None:
                    self.first_stamp_ns = stamp
                    self._schedule_playback(now_ns)
                self.sent += len(chunk)
                self._publish(chunk, stamp, "tts")
        elif self.s.idle_silence and (self.next_stamp_ns is None
                                      or self.next_stamp_ns - now_ns < self._chunk_ns / 2):
            self._publish(np.zeros(n, np.float32), self._next_stamp(now_ns), "tts_idle")

    @property
    def _chunk_ns(self) -> float:
        return self.s.chunk_samples * 1e9 / SAMPLE_RATE_HZ

    def _next_stamp(self, now_ns: int) -> int:
        """Silence (and the first speech chunk) is stamped when it is handed over (now), or
        right after the previous chunk when that one was published ahead: never overlapping."""
        return now_ns if self.next_stamp_ns is None else max(now_ns, self.next_stamp_ns)

    def _publish(self, chunk: np.ndarray, stamp_ns: int, frame_id: str) -> None:
        msg = AudioChunk(sample_rate=SAMPLE_RATE_HZ, channels=1, encoding="S16LE")
        msg.header.stamp = Time(sec=stamp_ns // messages.NS, nanosec=stamp_ns % messages.NS)
        msg.header.frame_id = frame_id
        msg.data = float_to_s16(chunk).tobytes()
        self.audio_pub.publish(msg)
        self.next_stamp_ns = stamp_ns + round(len(chunk) * 1e9 / SAMPLE_RATE_HZ)

    def _ready(self, now_ns: int) -> bool:
        """Speak once the delay is known and the face (and any recorder) listens, or after
        wait_for_delay_s without them (warned: the lips or the recording may miss speech)."""
        if self.first_stamp_ns is not None:
            return True
        listening = self.audio_pub.get_subscription_count() >= self.s.subscribers
        if self.delay_s is not None and listening:
            return True
        if now_ns - self.started_ns < self.s.wait_for_delay_s * 1e9:
            return False
        if self.delay_s is None:
            self.get_logger().warning("no pipeline_delay received: speaking without delay")
            self.delay_s = 0.0
        if not listening:
            self.get_logger().warning(f"self_audio has {self.audio_pub.get_subscription_count()}"
                                      f" of {self.s.subscribers} subscribers: speaking anyway")
        return True

    def _schedule_playback(self, now_ns: int) -> None:
        """Start playing at the first chunk's stamp + the pipeline delay - output latency."""
        assert self.first_stamp_ns is not None and self.delay_s is not None
        wait_s = max(0.0, (self.first_stamp_ns - now_ns) * 1e-9 + self.delay_s
                     - self.s.output_latency_ms / 1000.0)
        timer: Any = None

        def start() -> None:
            timer.cancel()
            if self.s.play:
                threading.Thread(target=self._play, daemon=True).start()
            sec, nanosec = messages.s_to_sec_nanosec(self.get_clock().now().nanoseconds * 1e-9)
            self.start_pub.publish(Time(sec=sec, nanosec=nanosec))

        timer = self.create_timer(wait_s, start)

    def _play(self) -> None:
        import sounddevice as sd  # PortAudio only when playing

        device = self.s.output_device or None
        sd.play(self.audio, SAMPLE_RATE_HZ, device=int(device) if device and device.isdigit()
                else device)


def main(args: list[str] | None = None) -> None:
    node_main.run(TtsPlayer, args)


if __name__ == "__main__":
    main()
