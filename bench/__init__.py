"""DualTalk benchmarks: `python -m bench.run` (what `make bench` calls); see bench/README.md."""
