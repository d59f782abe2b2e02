"""Streaming inference: timestamped audio chunks and partner faces in, 25 fps face frames out."""
from dualtalk_core.streaming.engine import (DEFAULT_MODEL_DIR, Frame, StreamConfig,
                                            StreamingEngine, process_clip)

__all__ = ["DEFAULT_MODEL_DIR", "Frame", "StreamConfig", "StreamingEngine", "process_clip"]
