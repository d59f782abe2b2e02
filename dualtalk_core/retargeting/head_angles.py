"""Head quaternion -> yaw, pitch and roll in radians, the head sources a joint map can name.

The engine's frames carry the head pose as a quaternion (x, y, z, w) in the REP-103 head frame
of `dualtalk_core.rigs` (x forward out of the face, y to the face's left, z up), built for the
ARKit rig as intrinsic Z-Y-X rotations. This is that construction's inverse, so for a head within
the rig's range (|pitch| < pi/2) the angles come back as the rig's `headYaw`, `headPitch` and
`headRoll` channels:

- `head.yaw`: about z, + = the face turns to its own left;
- `head.pitch`: about y, + = chin down;
- `head.roll`: about x, + = tilt towards its right shoulder.

Working from the quaternion rather than the ARKit channels makes the same map drive a robot from
either rig (FLAME carries its head as an axis-angle vector).
"""
from __future__ import annotations

import numpy as np

HEAD_ANGLES: tuple[str, ...] = ("head.yaw", "head.pitch", "head.roll")


def yaw_pitch_roll(quaternion: np.ndarray) -> np.ndarray:
    """(..., 4) quaternions (x, y, z, w), any norm > 0 -> (..., 3) yaw, pitch, roll in radians.

    q and -q give the same angles (every term is quadratic in q). At pitch = +-pi/2 (gimbal lock)
    yaw and roll share one axis and their split is arbitrary; a head never gets there.
    """
    q = np.asarray(quaternion, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    roll = np.arctan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
    pitch = np.arcsin(np.clip(2.0 * (w * y - z * x), -1.0, 1.0))
    yaw = np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    return np.stack([yaw, pitch, roll], axis=-1)
