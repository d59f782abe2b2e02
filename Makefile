# The two commands of the README: `make demo` (the main job) and `make test`. Both set up a fresh
# Debian 12 machine first (scripts/setup.sh is idempotent and says what it does).
SHELL := /bin/bash

.PHONY: setup test demo bench lint clean

setup:
	bash scripts/setup.sh

test:
	bash scripts/test.sh

demo:
	bash scripts/demo.sh

bench:
	bash scripts/bench.sh

lint: setup
	. .venv/bin/activate && flake8 dualtalk_core dualtalk_ros test launch bench

clean:
	rm -rf build install log demo_out .pytest_cache
