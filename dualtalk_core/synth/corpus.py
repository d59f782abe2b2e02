"""Build and write the synthetic two-person conversation corpus (`dualtalk-synth`).

Layout (docs/DESIGN.md): `OUT/{train,test,ood,val}/<clip>_speaker{1,2}.{wav,npz}` and
`<clip>.json`.
Every clip draws from its own generator seeded by (seed, split, index), so clips are the same
whatever the number of worker processes or the order they finish in; files are written with
fixed zip timestamps so the same seed gives byte-identical output.

libespeak-ng carries state from one synthesis to the next (waveform phase, some voice settings:
the same text can come out a few samples longer after another voice spoke). So each clip is built
in a fresh process forked from a clean fork server that never synthesised anything: a clip's
audio then depends only on its own sequence of calls, never on the clips before it.

`--piper-share` lets the neural Piper voice speak for one person in that share of clips
(voices.py: joe in train/test/val, a pitch- and formant-shifted joe held out for ood). Piper's
noise is seeded per utterance (piper_voice.py), so those clips are as reproducible; each clip
process loads the model once (about 1.2 s). A share of 0, the default, writes the same bytes as
before the option existed.
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import multiprocessing
import multiprocessing.pool
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly
from tqdm import tqdm

from dualtalk_core.rigs import get_rig
from dualtalk_core.synth import behaviour, persona, prosody
from dualtalk_core.synth.dialogue import DialogueConfig, Utterance, plan_dialogue
from dualtalk_core.synth.espeak import PAUSE
from dualtalk_core.synth.visemes import VisemeConfig, viseme_curves
from dualtalk_core.synth.voices import SPLITS, Speaker, VoiceConfig, draw_voices
from dualtalk_core.audio.wav_files import write_wav
from dualtalk_core.units import FRAME_RATE_HZ, SAMPLES_PER_FRAME, SAMPLE_RATE_HZ

LOG = logging.getLogger(__name__)
_ESPEAK_RATE = 22050
_NOISE_FLOOR = 3e-4        # room noise: no exactly silent stretches in either track
# Bumped when the same seed starts giving different clips; written into every <clip>.json.
CORPUS_VERSION = 4
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_RIG = get_rig("arkit52")
_N_BLEND = 52


@dataclass
class Clip:
    """One conversation: `audio (2, N)` float32 16 kHz, `coeffs (2, T, 55)` float32."""

    name: str
    audio: np.ndarray
    coeffs: np.ndarray
    meta: dict


def _mix(utts: list[Utterance], duration_s: float, gains: tuple[float, float],
         rng: np.random.Generator) -> np.ndarray:
    """Each person's own utterances on their own track: (2, N) at 16 kHz."""
    n22 = int(np.ceil(duration_s * _ESPEAK_RATE))
    tracks = np.zeros((2, n22), np.float64)
    for u in utts:
        if u.speech.sample_rate != _ESPEAK_RATE:
            raise ValueError(f"expected speech at {_ESPEAK_RATE} Hz, got {u.speech.sample_rate}")
        i = int(round(u.start_s * _ESPEAK_RATE))
        seg = u.speech.audio[: max(0, n22 - i)]
        tracks[u.person, i:i + len(seg)] += gains[u.person] * seg
    audio = resample_poly(tracks, 320, 441, axis=1)  # 22050 -> 16000 Hz
    audio += rng.normal(0.0, _NOISE_FLOOR, audio.shape)
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def _phoneme_track(utts: list[Utterance], person: int) -> tuple[list[str], np.ndarray, float]:
    """A person's phonemes on the clip timeline, a pause closing each utterance."""
    names: list[str] = []
    starts: list[float] = []
    end = 0.0
    for u in sorted((u for u in utts if u.person == person), key=lambda u: u.start_s):
        names.extend(u.speech.phonemes)
        starts.extend((u.start_s + u.speech.phoneme_starts_s).tolist())
        names.append(PAUSE)
        starts.append(u.end_s)
        end = max(end, u.end_s)
    order = np.argsort(np.asarray(starts), kind="stable")
    return [names[i] for i in order], np.asarray(starts)[order], end + 0.1


def _face(utts: list[Utterance], prosodies: list[tuple[np.ndarray, np.ndarray]], person: int,
          n_frames: int, rng: np.random.Generator, bcfg: behaviour.BehaviourConfig,
          styles: list[behaviour.Style], rest: np.ndarray) -> tuple[np.ndarray, list[dict]]:
    """(n_frames, 55) coefficients of one person: resting face (55,) + visemes + behaviour,
    blendshapes in [0, 1]. `prosodies` holds each person's (F0 z-score, energy dB) tracks: one's
    own drive the speaking head, the partner's the head mimicry."""
    names, starts, end = _phoneme_track(utts, person)
    mouth = viseme_curves(names, starts, end, n_frames,
                          VisemeConfig(gain=float(rng.uniform(0.8, 1.2))))
    f0z, energy = prosodies[person]
    partner_pitch, partner_roll, _ = behaviour.speech_head(*prosodies[1 - person],
                                                           styles[1 - person])
    face, events = behaviour.person_behaviour(person, utts, n_frames, f0z, energy,
                                              styles[person], bcfg, rng,
                                              (partner_pitch, partner_roll))
    out = face + mouth + rest
    out[:, :_N_BLEND] = np.clip(out[:, :_N_BLEND], 0.0, 1.0)
    return out.astype(np.float32), events


def _utterance_meta(u: Utterance) -> dict:
    return {"person": u.person + 1, "kind": u.kind, "text": u.text,
            "start_s": round(u.start_s, 3), "voiced_end_s": round(u.voiced_end_s, 3),
            "question": u.question,
            "phrase_ends_s": [round(t, 3) for t in u.phrase_ends_s()],
            "smile": None if u.smile is None else [round(x, 3) for x in u.smile]}


def build_clip(split: str, index: int, seed: int, dcfg: DialogueConfig = DialogueConfig(),
               bcfg: behaviour.BehaviourConfig = behaviour.BehaviourConfig(),
               vcfg: VoiceConfig = VoiceConfig()) -> Clip:
    """Make one conversation; a pure function of (split, index, seed, configs), because it is
    built in a fresh process (see the module docstring)."""
    with _isolated_pool(1) as pool:
        return pool.apply(_build_clip, (split, index, seed, dcfg, bcfg, vcfg))


def _isolated_pool(workers: int) -> multiprocessing.pool.Pool:
    """Worker processes that run one task each, forked from a server with fresh espeak state."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["dualtalk_core.synth.corpus"])
    return ctx.Pool(workers, maxtasksperchild=1)


def _build_clip(split: str, index: int, seed: int, dcfg: DialogueConfig,
                bcfg: behaviour.BehaviourConfig, vcfg: VoiceConfig = VoiceConfig()) -> Clip:
    """`build_clip` in this process: deterministic only if espeak has not spoken here yet."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
    voices = draw_voices(rng, split, vcfg)
    utts, duration = plan_dialogue(rng, voices, dcfg)
    behaviour.plan_smiles(rng, utts, bcfg)
    gains = (float(rng.uniform(0.6, 1.0)), float(rng.uniform(0.6, 1.0)))
    audio = _mix(utts, duration, gains, rng)
    n_frames = int(np.ceil(audio.shape[1] / SAMPLES_PER_FRAME))
    styles = [behaviour.draw_style(rng, bcfg) for _ in range(2)]
    rests = [persona.session_face(v.identity, seed, rng) for v in voices]
    prosodies = [(prosody.pitch_z(prosody.pitch_hz(audio[p], n_frames)),
                  prosody.energy_db(audio[p], n_frames)) for p in range(2)]
    faces, events = [], []
    for p in range(2):
        face, ev = _face(utts, prosodies, p, n_frames, rng, bcfg, styles, rests[p])
        faces.append(face)
        events.append(ev)
    name = f"syn_{split}_{index:05d}"
    turns = len({u.turn for u in utts if u.turn >= 0})
    meta = {"clip": name, "corpus_version": CORPUS_VERSION, "split": split, "seed": seed,
            "index": index,
            "sample_rate": SAMPLE_RATE_HZ, "n_samples": int(audio.shape[1]), "n_frames": n_frames,
            "fps": 25, "turns": turns, "rounds": (turns + 1) // 2,
            "voices": [_voice_meta(v) for v in voices],
            "styles": [asdict(s) for s in styles],
            "resting_faces": [{n: round(float(x), 4) for n, x in zip(_RIG.names, r) if x != 0.0}
                              for r in rests],
            "utterances": [_utterance_meta(u) for u in utts],
            "events": {"speaker1": events[0], "speaker2": events[1]}}
    if vcfg.piper_share:  # only then: espeak-only clips keep their bytes
        meta["piper_share"] = vcfg.piper_share
    return Clip(name, audio, np.stack(faces), meta)


def _voice_meta(v: Speaker) -> dict:
    return {"name": v.name, **asdict(v)}


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like np.savez, but with fixed zip timestamps so identical data gives identical bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for key, value in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(value), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_TIME), buf.getvalue())


def write_clip(clip: Clip, folder: Path) -> None:
    """`<clip>_speaker{1,2}.wav` (int16), `.npz` (coeffs, names, rig, fps) and `<clip>.json`."""
    folder.mkdir(parents=True, exist_ok=True)
    names = np.array(_RIG.names, dtype=np.str_)
    for p in range(2):
        stem = folder / f"{clip.name}_speaker{p + 1}"
        write_wav(stem.with_suffix(".wav"), clip.audio[p])
        _write_npz(stem.with_suffix(".npz"), {
            "coeffs": clip.coeffs[p], "names": names, "rig": np.array(_RIG.name),
            "fps": np.array(FRAME_RATE_HZ, dtype=np.int64)})
    text = json.dumps(clip.meta, indent=1, sort_keys=True)
    (folder / f"{clip.name}.json").write_text(text + "\n", encoding="utf-8")


def _job(task: tuple[str, int, int, Path, DialogueConfig, VoiceConfig]) -> float:
    split, index, seed, out, dcfg, vcfg = task
    clip = _build_clip(split, index, seed, dcfg, behaviour.BehaviourConfig(), vcfg)
    write_clip(clip, out / split)
    return clip.audio.shape[1] / SAMPLE_RATE_HZ


def write_corpus(out: Path, counts: dict[str, int], seed: int,
                 dcfg: DialogueConfig = DialogueConfig(), workers: int = 1,
                 vcfg: VoiceConfig = VoiceConfig()) -> float:
    """Write every split; returns the total audio duration in seconds (per speaker)."""
    tasks = [(s, i, seed, out, dcfg, vcfg) for s in SPLITS for i in range(counts.get(s, 0))]
    total = 0.0
    with _isolated_pool(max(1, workers)) as pool:
        for dur in tqdm(pool.imap_unordered(_job, tasks), total=len(tasks), desc="clips",
                        unit="clip"):
            total += dur
    return total


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="dualtalk-synth", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="corpus folder to write")
    ap.add_argument("--clips", type=int, default=200, help="train clips")
    ap.add_argument("--test-clips", type=int, default=None, help="default: clips // 10 (>= 1)")
    ap.add_argument("--ood-clips", type=int, default=None, help="default: clips // 10 (>= 1)")
    ap.add_argument("--val-clips", type=int, default=None,
                    help="validation clips for picking checkpoints; default: clips // 10 (>= 1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-rounds", type=int, default=1)
    ap.add_argument("--max-rounds", type=int, default=6)
    ap.add_argument("--workers", type=int, default=1, help="processes (output is identical)")
    ap.add_argument("--piper-share", type=float, default=0.0,
                    help="share of clips (0-1) in which one of the two people speaks with the "
                         "neural Piper voice (ood: its held-out pitch-shifted variant); 0 keeps "
                         "the espeak-ng-only corpus")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not 1 <= args.min_rounds <= args.max_rounds:
        raise SystemExit(f"need 1 <= --min-rounds <= --max-rounds, got {args.min_rounds}, "
                         f"{args.max_rounds}")
    default_eval = max(1, args.clips // 10)
    counts = {"train": args.clips,
              "test": default_eval if args.test_clips is None else args.test_clips,
              "ood": default_eval if args.ood_clips is None else args.ood_clips,
              "val": default_eval if args.val_clips is None else args.val_clips}
    if min(counts.values()) < 0:
        raise SystemExit(f"clip counts must be >= 0, got {counts}")
    dcfg = DialogueConfig(min_rounds=args.min_rounds, max_rounds=args.max_rounds)
    try:
        vcfg = VoiceConfig(piper_share=args.piper_share)
    except ValueError as exc:
        raise SystemExit(f"--piper-share: {exc}") from exc
    if any((args.out / s).is_dir() and any((args.out / s).iterdir()) for s in SPLITS):
        LOG.warning("%s already holds clips: same-named files are overwritten, others stay "
                    "(remove the folder for a clean corpus)", args.out)
    t0 = time.perf_counter()
    total = write_corpus(args.out, counts, args.seed, dcfg, args.workers, vcfg)
    LOG.info("wrote %s clips (%.1f min of conversation) to %s in %.1f s", counts, total / 60,
             args.out, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
