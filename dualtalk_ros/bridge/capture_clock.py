"""Capture stamps on a continuous sample-count timeline, like an audio driver's.

A microphone's buffer can only be stamped from a measurement taken when its callback runs: the
ADC time PortAudio reports, mapped onto the node's clock at the moment the callback reads it.
Under CPU load the callback runs late, and the measurement is late with it (never early): two
32 ms buffers measured 0.1 ms apart, one 32 ms backwards, were seen in the full test run. The
DualTalk node places audio by its stamps, so a stream stamped from raw measurements has holes
and overlaps that the sound card never made.

`CaptureClock` stamps buffer k at `anchor + samples_before_k / rate`: consecutive buffers are
exactly contiguous. The measurements only steer the anchor, knowing they are late or on time:
- the anchor follows the minimum of the recent measurements (mapped back to sample 0), because
  the least late callback is the best estimate of the truth; a lower minimum moves it earlier at
  once (the first anchor was late: a counted correction, the step kept >= 1 sample so stamps
  still increase), or by a sub-sample slew when the move is small;
- a minimum that stays later than the anchor by more than a dead band is clock drift between
  the sound card and the system clock: the anchor slews later to it, a fraction of a sample per
  buffer, so every step still rounds to the exact buffer length;
- an overflow (samples lost) or a measurement later than the count by more than a bound (buffers
  dropped) re-anchors at the measurement, as does one far earlier (the clock stepped back).
The model needs measurements that are never early: `bounded_measurement_ns` keeps a host API's
ADC time within what the callback's own timing allows (ALSA's pulse plugin was seen reporting
buffer ages ramping from 0 to 1.7 s under load while its callbacks came every 32 ms).
Pure Python, no rclpy: the node and its tests share it.
"""
from __future__ import annotations

import collections

NS_PER_S = 1_000_000_000
# A measurement later than the count by more than this means samples were lost (PortAudio
# dropped buffers, the source stalled): callback delays under load stay well below it (40 ms
# seen on this 2-core machine with the whole test suite running).
MAX_LATE_NS = 100_000_000
# Earlier than the count by more than this: the node's clock stepped back (a restarted bag
# under use_sim_time), not a late anchor, which earlier steps correct (a stall with PortAudio
# buffering through it re-anchors late, then steps back at the next honest measurement).
MAX_EARLY_NS = 1_000_000_000
# The minimum over this much audio is the reference: long enough that a buffer on time (or
# nearly) is among it under load, short enough that 100 ppm drift moves it by only 0.2 ms.
WINDOW_S = 2.0
# The timeline is moved later only when the reference is later than it by more than this:
# below it the minimum of the callbacks' delays, not drift, moves the reference, and chasing it
# would step the timeline back and forth. 50 ppm drift takes 20 s to build this much error.
DRIFT_DEAD_BAND_NS = 1_000_000
# Moves up to this size toward an earlier reference are slewed, not stepped: a sound card
# faster than the system clock, or a slightly lower minimum, is no reason to break contiguity.
SLEW_LIMIT_NS = 1_000_000
# A slew moves a buffer's stamp by at most this fraction of a sample, so each step still
# rounds to the buffer's length in samples (488 ppm at 512 samples: 5x a crystal's drift).
SLEW_SAMPLES_PER_BUFFER = 0.25
# An earlier step leaves a buffer's step at least this long, so stamps always increase
# (consumers drop chunks that go back) while a late anchor is found out at once: a PulseAudio
# start delivered 64 buffers (2 s of backlog) within 40 ms, all measured alike; stamped one
# sample apart they stay below their arrival, and the first buffer after the burst is right.
MIN_STEP_SAMPLES = 1


def bounded_measurement_ns(now_ns: int, age_ns: int | None, frames: int, rate_hz: int,
                           latency_ns: int) -> tuple[int, bool]:
    """A buffer's first-sample capture time from the callback's clock reading `now_ns` and the
    host API's age of that sample (`currentTime - inputBufferAdcTime`), and whether that age
    was plausible.

    The buffer was complete when its callback began, so its first sample is at least one
    buffer old: a smaller age is raised to that (never early, as `CaptureClock` needs). An age
    beyond one buffer plus the stream's declared input latency is the host API's error, not
    the audio's: the buffer is then taken as one buffer old (late, if anything, and corrected
    by the plausible ones). No age at all (some host APIs): one buffer plus the latency, the
    host's own promise.
    """
    newest_ns = now_ns - frames * NS_PER_S // rate_hz
    if age_ns is None:
        return newest_ns - latency_ns, True
    measured_ns = now_ns - age_ns
    if measured_ns < newest_ns - latency_ns:
        return newest_ns, False
    return min(measured_ns, newest_ns), True


class CaptureClock:
    """Turns measured buffer stamps (ns, late or on time) into contiguous capture stamps.

    `reanchors` counts restarts of the timeline (overflows, holes, clock steps back);
    `corrections` counts steps earlier than contiguity (a late anchor found out). Every other
    step equals the buffer's length to within SLEW_SAMPLES_PER_BUFFER of a sample.
    """

    def __init__(self, sample_rate_hz: int) -> None:
        if not isinstance(sample_rate_hz, int) or sample_rate_hz <= 0:
            raise ValueError(f"sample_rate_hz must be a positive int, got {sample_rate_hz!r}")
        self.rate_hz = sample_rate_hz
        self.reanchors = 0
        self.corrections = 0
        self._window_samples = int(WINDOW_S * sample_rate_hz)
        self._anchor_ns: int | None = None
        self._samples = 0  # counted since the anchor
        self._catching_up = False  # slewing later after the dead band was crossed
        self._last_frames = 0  # the previous buffer's: an earlier step shortens its step
        # (sample index, measured - counted offset) with increasing offsets: the sliding minimum
        self._window: collections.deque[tuple[int, int]] = collections.deque()

    def stamp(self, measured_ns: int, frames: int, overflow: bool = False) -> int:
        """The capture stamp (ns) of a buffer of `frames` samples measured at `measured_ns`;
        `overflow` is PortAudio's input-overflow flag for it (samples lost before it)."""
        if frames <= 0:
            raise ValueError(f"frames must be positive, got {frames}")
        if self._anchor_ns is None:
            self._restart(measured_ns)
        else:
            counted_ns = self._counted_ns(self._samples)
            error_ns = measured_ns - counted_ns
            if error_ns < -MAX_EARLY_NS:  # the clock stepped back: so do the stamps
                self.reanchors += 1
                self._restart(measured_ns)
            elif overflow or error_ns > MAX_LATE_NS:  # samples lost: not before the count
                self.reanchors += 1
                self._restart(max(measured_ns, counted_ns))
            else:
                self._steer(measured_ns)
        stamp_ns = self._counted_ns(self._samples)
        self._samples += frames
        self._last_frames = frames
        return stamp_ns

    def _counted_ns(self, samples: int) -> int:
        assert self._anchor_ns is not None
        return self._anchor_ns + samples * NS_PER_S // self.rate_hz

    def _restart(self, anchor_ns: int) -> None:
        self._anchor_ns, self._samples, self._catching_up = anchor_ns, 0, False
        self._window.clear()
        self._window.append((0, anchor_ns))

    def _reference_gap_ns(self, measured_ns: int) -> int:
        """Window minimum of the measurements' offsets minus the anchor, this one included."""
        assert self._anchor_ns is not None
        offset = measured_ns - self._samples * NS_PER_S // self.rate_hz
        while self._window and self._window[-1][1] >= offset:
            self._window.pop()
        self._window.append((self._samples, offset))
        while self._window[0][0] < self._samples - self._window_samples:
            self._window.popleft()
        return self._window[0][1] - self._anchor_ns

    def _steer(self, measured_ns: int) -> None:
        """Move the anchor toward the reference: earlier at once, later past the dead band."""
        assert self._anchor_ns is not None
        gap_ns = self._reference_gap_ns(measured_ns)
        slew_ns = max(1, int(SLEW_SAMPLES_PER_BUFFER * NS_PER_S / self.rate_hz))
        if gap_ns < -SLEW_LIMIT_NS:  # a late anchor found out: step earlier, stamps increasing
            longest_ns = (self._last_frames - MIN_STEP_SAMPLES) * NS_PER_S // self.rate_hz
            self._anchor_ns -= min(-gap_ns, longest_ns)
            self.corrections += 1
            self._catching_up = False
        elif gap_ns < 0:
            self._anchor_ns -= min(-gap_ns, slew_ns)
            self._catching_up = False
        else:
            full = self._samples >= self._window_samples
            self._catching_up = (self._catching_up or (full and gap_ns > DRIFT_DEAD_BAND_NS))
            if self._catching_up:
                self._anchor_ns += min(gap_ns, slew_ns)
                self._catching_up = gap_ns > slew_ns
