"""Test helpers of the core tests (small corpora, ARKit values) are importable by name."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
