"""The shipped default model: StreamingEngine.load(None) finds it; it talks and it listens."""
from __future__ import annotations

import numpy as np
import pytest

from dualtalk_core.model import DEFAULT_MODEL_DIR, DualTalkModel
from dualtalk_core.rigs import get_rig
from dualtalk_core.streaming import StreamingEngine
from dualtalk_core.synth.corpus import build_clip


@pytest.fixture(scope="module")
def clip():
    """A conversation with ood voices, built here (never seen in training)."""
    return build_clip("ood", 7, seed=4242)


def test_engine_loads_the_shipped_model_by_default():
    engine = StreamingEngine.load(None)
    assert engine.rig.name == "arkit52" and engine.lookahead_ms == 200.0
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
