"""The shipped default model: StreamingEngine.load(None) finds it and streams it frame by frame;
it talks, it listens (to the voice alone too) and its idle motion keeps it alive in silence."""
from __future__ import annotations

import numpy as np
import pytest

from dualtalk_core.model import DEFAULT_MODEL_DIR, DualTalkModel
from dualtalk_core.rigs import get_rig
from dualtalk_core.streaming import StreamingEngine, process_clip
from dualtalk_core.streaming.incremental_stepper import IncrementalStepper
from dualtalk_core.synth.corpus import build_clip


@pytest.fixture(scope="module")
def clip():
    """A conversation with ood voices, built here (never seen in training)."""
    return build_clip("ood", 7, seed=4242)


def test_engine_loads_the_shipped_model_by_default():
    engine = StreamingEngine.load(None)
    assert engine.rig.name == "arkit52" and engine.lookahead_ms <= 120.0
    assert isinstance(engine._stepper, IncrementalStepper)  # bounded span: frame by frame
    assert engine.model.idle_motion is not None
    assert (DEFAULT_MODEL_DIR / "model.safetensors").stat().st_size < 20 * 2**20
    assert (DEFAULT_MODEL_DIR / "MODEL_CARD.md").is_file()


def test_jaw_follows_own_speech_and_smiles_follow_the_partner(clip):
    model = DualTalkModel.load(DEFAULT_MODEL_DIR, device="cpu")
    names = get_rig("arkit52").names
    jaw, smile = names.index("jawOpen"), names.index("mouthSmileLeft")
    gt, partner = clip.coeffs[0], clip.coeffs[1]
    pred = model.predict(clip.audio[0], clip.audio[1], partner)
    assert np.corrcoef(pred[:, jaw], gt[:, jaw])[0, 1] > 0.7
    # Speaker-only ablation: silence and a neutral face for the partner.
    deaf = model.predict(clip.audio[0], np.zeros_like(clip.audio[1]), np.zeros_like(partner))
    r_listen = np.corrcoef(pred[:, smile], gt[:, smile])[0, 1]
    r_deaf = np.corrcoef(deaf[:, smile], gt[:, smile])[0, 1]
    assert r_listen > r_deaf + 0.1, (r_listen, r_deaf)


def test_it_listens_to_the_partner_voice_alone(clip):
    """No partner face (a robot without a tracker): the partner's speech still changes the
    listening face, far above float rounding (the model shipped before scored 3.8e-11)."""
    model = DualTalkModel.load(DEFAULT_MODEL_DIR, device="cpu")
    neutral = np.tile(get_rig("arkit52").neutral_array(), (len(clip.coeffs[1]), 1))
    heard = model.predict(clip.audio[0], clip.audio[1], neutral)
    silent = model.predict(clip.audio[0], np.zeros_like(clip.audio[1]), neutral)
    assert np.abs(heard - silent).mean() > 1e-3


def test_thirty_seconds_of_silence_still_blink_and_move_the_head():
    engine = StreamingEngine.load(None)
    quiet = np.zeros(30 * 16000, np.float32)
    frames = process_clip(engine, quiet, quiet)
    names = get_rig("arkit52").names
    lids = frames[:, [names.index("eyeBlinkLeft"), names.index("eyeBlinkRight")]].mean(axis=1)
    blinks = int(np.sum((lids[1:] >= 0.5) & (lids[:-1] < 0.5)))
    assert 2 <= blinks <= 20, blinks  # the corpus: ~12 a minute in silence
    head = frames[375:, [names.index(n) for n in ("headPitch", "headYaw", "headRoll")]]
    assert (np.degrees(head.std(axis=0)) > 0.1).all()  # still moving in the last 15 s
