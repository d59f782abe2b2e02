"""The DualTalk network: its configuration, audio encoders, layers and checkpoint files."""
from dualtalk_core.model.checkpoint import DEFAULT_MODEL_DIR
from dualtalk_core.model.devices import resolve_device
from dualtalk_core.model.model_config import (ARCH_FIELDS, LATER_FIELDS, PRESETS, RUNTIME_FIELDS,
                                              ModelConfig, lookahead_plan)
from dualtalk_core.model.network import DualTalkModel

__all__ = ["ARCH_FIELDS", "DEFAULT_MODEL_DIR", "LATER_FIELDS", "PRESETS", "RUNTIME_FIELDS",
           "DualTalkModel", "ModelConfig", "lookahead_plan", "resolve_device"]
