"""Test helper: an arkit52 coefficient vector from a few named channels (others neutral)."""
import numpy as np

from dualtalk_core.rigs import get_rig


def coeffs(**values: float) -> np.ndarray:
    """coeffs(jawOpen=1.0) -> (55,) float32 in arkit52 order."""
    names = get_rig("arkit52").names
    c = np.zeros(len(names), np.float32)
    for name, value in values.items():
        c[names.index(name)] = value
    return c
