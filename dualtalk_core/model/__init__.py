"""The DualTalk network: its configuration, audio encoders, layers and checkpoint files."""
from dualtalk_core.model.network import DualTalkModel

__all__ = ["DualTalkModel"]
