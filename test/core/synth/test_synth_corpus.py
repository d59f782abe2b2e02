"""dualtalk-synth: layout of DESIGN.md, shapes, ranges, determinism, OOD voices, causality,
the Piper option."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from dualtalk_core.dataset.clips import list_clips, load_clip, load_motion
from dualtalk_core.rigs import get_rig
from dualtalk_core.synth import persona
from dualtalk_core.synth.corpus import CORPUS_VERSION, build_clip, main
from dualtalk_core.synth.dialogue import DialogueConfig
from dualtalk_core.synth.piper_voice import OOD_SHIFT, PiperSpeaker
from dualtalk_core.synth.voices import (PIPER_IN, PIPER_OOD, SPLITS, VoiceConfig, draw_voices,
                                        val_only_pool, voice_pool)

ARGS = ["--clips", "1", "--test-clips", "1", "--ood-clips", "1", "--max-rounds", "2"]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "a"
    assert main(["--out", str(out), "--seed", "7", *ARGS]) == 0
    return out


def test_layout_shapes_names_and_ranges(corpus: Path):
    rig = get_rig("arkit52")
    for split in SPLITS:
        clips = list_clips(corpus, split)
        assert len(clips) == 1
        clip = clips[0]
        meta = json.loads((corpus / split / f"{clip}.json").read_text())
        lengths = []
        for s in (1, 2):
            rate, pcm = wavfile.read(corpus / split / f"{clip}_speaker{s}.wav")
            assert rate == 16000 and pcm.ndim == 1 and pcm.dtype == np.int16
            lengths.append(len(pcm))
            with np.load(corpus / split / f"{clip}_speaker{s}.npz") as npz:
                coeffs = npz["coeffs"]
                assert coeffs.dtype == np.float32
                assert coeffs.shape == (int(np.ceil(len(pcm) / 640)), 55)
                assert tuple(npz["names"]) == rig.names
                assert str(npz["rig"]) == "arkit52" and int(npz["fps"]) == 25
            assert coeffs[:, :52].min() >= 0.0 and coeffs[:, :52].max() <= 1.0
            assert np.abs(coeffs[:, 52:]).max() < 0.6  # head angles in radians
            assert coeffs[:, rig.names.index("jawOpen")].max() > 0.3  # the person speaks
        assert lengths[0] == lengths[1] == meta["n_samples"]
        assert 9.5 <= lengths[0] / 16000 <= 30.5
        assert len({v["name"] for v in meta["voices"]}) == 2
        assert meta["corpus_version"] == CORPUS_VERSION
        for s, rest in enumerate(meta["resting_faces"]):  # each face sits on its resting face
            coeffs = load_motion(corpus / split / f"{clip}_speaker{s + 1}.npz")[0]
            for name in ("eyeSquintLeft", "browDownRight", "mouthShrugLower"):
                floor = rest.get(name, 0.0)
                assert floor - 1e-4 <= np.median(coeffs[:, rig.names.index(name)]) <= floor + 0.15
        loaded = load_clip(corpus, split, clip)
        assert loaded.rig == "arkit52" and loaded.motion[0].shape[1] == 55


def test_same_seed_is_byte_identical_and_another_seed_differs(corpus: Path, tmp_path: Path):
    assert main(["--out", str(tmp_path / "b"), "--seed", "7", "--workers", "2", *ARGS]) == 0
    assert main(["--out", str(tmp_path / "c"), "--seed", "8", *ARGS]) == 0
    a, b, c = _files(corpus), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert len(a) == 5 * len(SPLITS) and a == b
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a)


def test_ood_voices_never_appear_in_train_or_test(corpus: Path):
    train = set(voice_pool("train"))
    assert set(voice_pool("test")) == train
    assert not train & set(voice_pool("ood"))
    for split in ("train", "test", "ood"):
        for meta_path in (corpus / split).glob("*.json"):
            for v in json.loads(meta_path.read_text())["voices"]:
                assert ((v["language"], v["variant"]) in train) == (split != "ood")


def test_val_pairs_a_known_person_with_a_voice_no_other_split_uses():
    new = set(val_only_pool())
    assert new and not new & (set(voice_pool("train")) | set(voice_pool("ood")))
    first_is_known = set()
    for index in range(6):
        voices = build_clip("val", index, 5).meta["voices"]
        combos = [(v["language"], v["variant"]) for v in voices]
        assert [c in new for c in combos].count(True) == 1
        assert [c in set(voice_pool("train")) for c in combos].count(True) == 1
        first_is_known.add(combos[0] in set(voice_pool("train")))
    assert first_is_known == {True, False}  # the new voice is not always the same speaker


def test_listener_reactions_follow_their_causes_in_a_clip():
    clip = build_clip("train", 3, 11)
    for s, style in enumerate(clip.meta["styles"]):
        for ev in clip.meta["events"][f"speaker{s + 1}"]:
            if ev["type"] == "mirror_smile":
                assert ev["t"] - ev["cause_t"] == pytest.approx(style["mirror_delay_s"], abs=2e-3)
                assert 0.3 <= ev["t"] - ev["cause_t"] <= 0.6
            elif ev["type"] in ("nod", "brow_raise"):
                assert -0.1 <= ev["t"] - ev["cause_t"] <= 0.7
    kinds = {u["kind"] for u in clip.meta["utterances"]}
    assert kinds == {"sentence", "backchannel"}


def test_piper_share_zero_draws_what_it_always_did_and_one_gives_one_piper_person():
    for split in SPLITS:
        for index in range(20):
            a, b = np.random.default_rng([4, index]), np.random.default_rng([4, index])
            assert draw_voices(a, split) == draw_voices(b, split, VoiceConfig(piper_share=0.0))
            assert a.random() == b.random()                      # no extra draw either
            pair = draw_voices(a, split, VoiceConfig(piper_share=1.0))
            piper = [v for v in pair if isinstance(v, PiperSpeaker)]
            assert len(piper) == 1
            assert piper[0].shift == (float(OOD_SHIFT) if split == "ood" else 1.0)
            # the voice speaks for the person it replaced (b is where a was: the same pair)
            replaced = draw_voices(b, split)[pair.index(piper[0])]
            assert piper[0].identity == replaced.name != piper[0].name
            if split == "val":  # the Piper person stands in for the known one
                other = [v for v in pair if not isinstance(v, PiperSpeaker)][0]
                assert (other.language, other.variant) in set(val_only_pool())
    with pytest.raises(ValueError, match="piper_share"):
        VoiceConfig(piper_share=1.5)
    with pytest.raises(SystemExit, match="piper-share"):
        main(["--out", "/nonexistent", "--piper-share", "-0.1"])


def test_a_piper_clip_in_ood_uses_the_held_out_voice_and_moves_its_jaw():
    clip = build_clip("ood", 0, 5, DialogueConfig(max_rounds=1, max_duration_s=12.0),
                      vcfg=VoiceConfig(piper_share=1.0))
    names = [v["name"] for v in clip.meta["voices"]]
    assert PIPER_OOD.name in names and PIPER_IN.name not in names
    assert clip.meta["piper_share"] == 1.0
    p = names.index(PIPER_OOD.name)
    assert clip.audio.shape[0] == 2 and np.all(np.isfinite(clip.audio))
    assert any(u["person"] == p + 1 for u in clip.meta["utterances"])
    assert np.abs(clip.audio[p]).max() > 0.3
    assert clip.coeffs[p, :, get_rig("arkit52").names.index("jawOpen")].max() > 0.2
    # its resting face is the replaced espeak person's, not one face of the voice's own
    person = clip.meta["voices"][p]["person"]
    assert person in {f"{lang}+{var}" for lang, var in voice_pool("ood")}
    names = get_rig("arkit52").names
    got = np.array([clip.meta["resting_faces"][p].get(n, 0.0) for n in names])
    to_person = np.abs(got - persona.resting_face(person, 5)).sum()
    to_voice = np.abs(got - persona.resting_face(PIPER_OOD.name, 5)).sum()
    assert to_person < to_voice / 3
