"""Audio in the core's one format: mono float32 at 16 kHz, full scale +-1."""
