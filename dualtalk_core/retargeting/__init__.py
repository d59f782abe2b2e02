"""Face frames -> robot joint commands: a YAML joint map and a streaming, limit-keeping retargeter.

`load_joint_map` reads and checks a map (docs/retargeting.md, config/retarget/neck_jaw.yaml);
`Retargeter.step` turns each engine frame (rig values and head quaternion) into a
`JointCommand` that never leaves a joint's position, velocity or acceleration limits.
"""
from dualtalk_core.retargeting.head_angles import HEAD_ANGLES, yaw_pitch_roll
from dualtalk_core.retargeting.joint_map import (JointMap, JointSpec, MapError, load_joint_map,
                                                 parse_joint_map, source_matrix)
from dualtalk_core.retargeting.limits import JointLimits, limit_step
from dualtalk_core.retargeting.retargeter import JointCommand, Retargeter

__all__ = ["HEAD_ANGLES", "JointCommand", "JointLimits", "JointMap", "JointSpec", "MapError",
           "Retargeter", "limit_step", "load_joint_map", "parse_joint_map", "source_matrix",
           "yaw_pitch_roll"]
