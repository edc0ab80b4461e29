.PHONY: setup browser run test lint bench

setup:
	bash scripts/setup.sh

browser:
	bash scripts/install_chromium.sh

run: setup
	.venv/bin/hicra train

lint: setup
	.venv/bin/ruff check src tests benchmarks
	.venv/bin/ruff format --check src tests benchmarks

test: lint browser
	.venv/bin/python -m pytest -q

bench: setup
	.venv/bin/python benchmarks/tagging.py
	.venv/bin/python benchmarks/train_step.py
	.venv/bin/python benchmarks/eval_throughput.py
	.venv/bin/python benchmarks/mining.py
	.venv/bin/python benchmarks/report.py
	.venv/bin/python benchmarks/experiment_overhead.py
