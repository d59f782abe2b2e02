"""The engine's echo stage: the robot's own voice removed from the partner's audio on the grid.

With `StreamConfig.echo_cancellation` on, partner grid samples are cleaned (`audio.
echo_cancellation`, WebRTC AEC3) with the own voice at the same grid samples as the reference,
in time order, each exactly once, as soon as both inputs hold them; the cleaned samples are
written back over the partner's on its timeline, so every stepper and every window reads
cleaned audio and nothing else changes. A missing own voice is silence on its timeline (a gap
or an absent TTS), which is a silent reference: the partner passes through.

Why streaming equals whole-clip processing: AEC3 sees the same frames in the same order
whatever the chunking, and the stage lets the model read only samples that are final. AEC3
takes whole 10 ms frames and returns each sample 8 ms late, so a partner sample is final once
its frame and 128 samples more are in: the model may read up to `cleaned_end`, 128-287
samples behind both inputs, and a frame waits up to 10 ms longer for its input (with the
default 200 ms lookahead, need(k) falls on a 10 ms boundary: exactly 10 ms). The cleaned
samples stay at their own grid times (the 8 ms is compensated, not passed on). At the end of
the stream the last frame is padded with silence, as `cancel_echo` does for a whole clip.

Known limit: the partner timeline's running waveform statistics (`AudioTimeline.heard`, used
only by the wav2vec2 front end) are of the audio as received, before cleaning.
"""
from __future__ import annotations

import logging

import numpy as np

from dualtalk_core.audio.echo_cancellation import (AEC3_DELAY_SAMPLES, FRAME_SAMPLES,
                                                   LATENCY_SAMPLES, EchoCanceller)
from dualtalk_core.streaming.input_tracks import InputTracks
from dualtalk_core.units import SAMPLE_RATE_HZ

log = logging.getLogger(__name__)

__all__ = ["EchoStage"]


class EchoStage:
    """Cleans the partner timeline in place up to `cleaned_end` (grid samples since t0).

    Disabled, it is a pass-through: `advance` returns what both inputs hold.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = bool(enabled)
        # Built now, so a missing library fails when the engine is made, not mid-stream.
        self._canceller = EchoCanceller() if self.enabled else None
        if self.enabled:
            log.info("echo cancellation on: the own voice is removed from the partner's audio "
                     "(WebRTC AEC3); frames wait up to %.0f ms longer for their input",
                     LATENCY_SAMPLES * 1000 / SAMPLE_RATE_HZ)
        self.restart(0)

    @property
    def max_wait_ms(self) -> float:
        """The most a frame waits for input past its lookahead because of this stage."""
        return LATENCY_SAMPLES * 1000 / SAMPLE_RATE_HZ if self.enabled else 0.0

    def restart(self, sample: int = 0) -> None:
        """A new stream (0), or the inputs continuing at grid `sample` after a stall or the
        end of a stream: the canceller starts afresh there."""
        if self._canceller is not None:
            self._canceller.reset()
        self._origin = sample  # first grid sample of the canceller's current run
        self._fed = sample  # grid samples [origin, fed) have gone into the canceller

    @property
    def cleaned_end(self) -> int:
        """Partner samples before this grid index are final (cleaned, or the pass-through)."""
        return max(self._origin, self._fed - AEC3_DELAY_SAMPLES)

    def input_needed(self, end: int) -> int:
        """Grid samples of both inputs that make partner samples [0, end) final."""
        if not self.enabled or end <= self.cleaned_end:
            return end
        frames = -(-(end + AEC3_DELAY_SAMPLES - self._origin) // FRAME_SAMPLES)
        return self._origin + frames * FRAME_SAMPLES

    def advance(self, tracks: InputTracks, final: bool) -> int:
        """Clean what both inputs newly hold (whole frames; `final`: to the end, padding the
        last frame with silence) -> grid samples [0, n) the model may read."""
        available = tracks.available()
        if not self.enabled:
            return available
        if final:
            # Silence after the input flushes AEC3's delay, as `cancel_echo` does.
            n = self.input_needed(available) - self._fed
        else:
            n = (available - self._fed) // FRAME_SAMPLES * FRAME_SAMPLES
        if n > 0:
            self._clean(tracks, n, available)
        if final and self._fed > available:
            self.restart(available)  # past the padding: input after a flush starts anew
        return min(available, self.cleaned_end)

    def _clean(self, tracks: InputTracks, n: int, available: int) -> None:
        """Feed grid samples [fed, fed + n) (silence past `available`) and write the cleaned
        samples that come out back at their own grid times."""
        assert self._canceller is not None
        start, real = self._fed, min(n, available - self._fed)
        own, mic = (np.zeros(n, np.float32) for _ in range(2))
        own[:real], mic[:real] = tracks.read_audio(start, start + real)  # (real,) each
        cleaned = self._canceller.process_frames(mic, own)  # (n,): grid [start - 128, ...)
        self._fed = start + n
        first = start - AEC3_DELAY_SAMPLES  # grid index of cleaned[0]
        lo, hi = max(first, self._origin), min(first + n, available)
        if hi > lo:
            tracks.partner_audio.overwrite(lo, cleaned[lo - first:hi - first])
