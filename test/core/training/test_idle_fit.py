"""dualtalk-fit-idle on a corpus with known blinks and head sway: the fitted process gives those
back on top of a network that has neither."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.io import wavfile

from dualtalk_core.model import DualTalkModel
from dualtalk_core.model import idle_motion as idle
from dualtalk_core.rigs import ARKIT_BLENDSHAPES, HEAD_POSE, get_rig
from dualtalk_core.training import idle_fit

RIG = get_rig("arkit52")
FRAMES = 1500  # 60 s per clip
AR = (1.7, -0.75)


def _speaker(rng: np.random.Generator, turn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Audio loud in its turns; a face that blinks ~20 times a minute and sways (AR(2))."""
    audio = rng.normal(size=(FRAMES, 640)) * np.where(turn, 0.2, 1e-4)[:, None]
    face = np.tile(RIG.neutral_array(), (FRAMES, 1)).astype(np.float64)
    k = 10
    while k < FRAMES - 6:
        face[k:k + 5, [RIG.names.index(n) for n in idle.BLINK_CHANNELS]] = \
            np.array([0.3, 0.9, 1.0, 0.6, 0.2])[:, None]
        k += 30 + int(rng.exponential(45))
    x = np.zeros((FRAMES, 3))
    for t in range(2, FRAMES):
        x[t] = AR[0] * x[t - 1] + AR[1] * x[t - 2] + 0.002 * rng.standard_normal(3)
    face[:, [RIG.names.index(n) for n in HEAD_POSE]] = x
    return audio.ravel(), face


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("idle_corpus")
    (root / "train").mkdir()
    names = np.array(ARKIT_BLENDSHAPES + HEAD_POSE)
    for c in range(3):
        rng = np.random.default_rng(c)
        first = (np.arange(FRAMES) // 100) % 2 == 0  # 4 s turns
        for spk, turn in ((1, first), (2, ~first)):
            audio, face = _speaker(rng, turn)
            wavfile.write(root / "train" / f"c{c}_speaker{spk}.wav", 16000,
                          (audio * 32767).astype(np.int16))
            np.savez(root / "train" / f"c{c}_speaker{spk}.npz",
                     coeffs=face.astype(np.float32), names=names)
    return root


@pytest.fixture(scope="module")
def network(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("net")
    DualTalkModel.from_preset("lite", device="cpu", feature_dim=16, audio_hidden_dim=16,
                              ff_dim=32, n_mels=16, n_interaction_layers=1,
                              lstm_layers=1).save(folder)
    return folder


def test_the_fit_gives_back_the_corpus_blinks_and_sway(corpus, network):
    d = idle_fit.Directions(DualTalkModel.load(network), corpus, "train", None, progress=False)
    params, report = idle_fit.calibrate(d, seed=0)
    rates = report["blinks_per_min"]
    assert max(rates["network"]) < 1.0  # the random network does not blink
    for role in (0, 1):  # speaking and listening (no silence in these turns)
        assert rates["with_idle"][role] == pytest.approx(rates["corpus"][role], rel=0.25)
        std = {k: np.asarray(v[role]) for k, v in report["head_std_rad"].items()}
        lacking = std["network"] < std["corpus"]  # topped up; the rest is left as it is
        assert lacking.sum() >= 2
        np.testing.assert_allclose(std["with_idle"][lacking], std["corpus"][lacking], rtol=0.25)
        np.testing.assert_allclose(std["with_idle"][~lacking], std["network"][~lacking],
                                   rtol=1e-6)
        assert (params.head_innovation[role][~lacking] == 0).all()
    assert params.blink_template.max() > 0.6  # the closure reaches near a closed eye
    np.testing.assert_allclose(params.head_ar, [AR] * 3, atol=0.1)
    assert params.refractory_frames >= 25


def test_the_cli_writes_the_file_beside_the_weights_and_errors_in_one_line(corpus, network,
                                                                           capsys):
    assert idle_fit.main(["--model", str(network), "--data", str(corpus),
                          "--max-clips", "1"]) == 0
    assert DualTalkModel.load(network).idle_motion is not None
    assert (network / idle.IDLE_MOTION_FILE).stat().st_mode & 0o777 == 0o644
    capsys.readouterr()
    assert idle_fit.main(["--model", str(network / "nope"), "--data", str(corpus)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nope" in err
    assert idle_fit.main(["--model", str(network), "--data", str(corpus),
                          "--split", "test"]) == 2
