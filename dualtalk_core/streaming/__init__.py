"""Streaming inference: timestamped audio chunks and partner faces in, 25 fps face frames out."""
from dualtalk_core.model import DEFAULT_MODEL_DIR
from dualtalk_core.streaming.clip_processing import process_clip
from dualtalk_core.streaming.engine import StreamingEngine
from dualtalk_core.streaming.output_stage import Frame
from dualtalk_core.streaming.stream_config import StreamConfig

__all__ = ["DEFAULT_MODEL_DIR", "Frame", "StreamConfig", "StreamingEngine", "process_clip"]
