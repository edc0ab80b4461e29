.PHONY: setup setup-verl browser run test test-verl lint bench bench-verl

setup:
	bash scripts/setup.sh

# The verl plugin's environment as a verl user builds it: verl[verl-core] 0.9.1 and the trl pin of
# verl's fsdp and megatron extras, resolved with the plugin in one pip command (docs/verl.md).
VERL_WITH = trl==0.27.0 verl[verl-core]==0.9.1
setup-verl:
	HICRA_VENV=.venv-verl HICRA_EXTRAS=dev,verl HICRA_WITH="$(VERL_WITH)" HICRA_BUNDLED_MODEL=0 \
		bash scripts/setup.sh

browser:
	bash scripts/install_chromium.sh

run: setup
	.venv/bin/hicra train

lint: setup
	.venv/bin/ruff check src tests benchmarks
	.venv/bin/ruff format --check src tests benchmarks

test: lint browser
	.venv/bin/python -m pytest -q --ignore=tests/test_verl_plugin.py \
		--ignore=tests/test_report_verl_dump.py  # run by test-verl, beside verl
	$(MAKE) test-verl

# verl's real trainer and TransferQueue on a local Ray cluster; here a missing verl fails, never skips.
# test_packaging.py again beside verl's trl pin: the core without trl, `hicra train` names its extra.
test-verl: setup-verl
	HICRA_REQUIRE_VERL=1 .venv-verl/bin/python -m pytest -q tests/test_verl_plugin.py \
		tests/test_verl_credit.py tests/test_packaging.py \
		tests/test_report_verl_dump.py

bench: setup
	.venv/bin/python benchmarks/tagging.py
	.venv/bin/python benchmarks/train_step.py
	.venv/bin/python benchmarks/eval_throughput.py
	.venv/bin/python benchmarks/mining.py
	.venv/bin/python benchmarks/report.py
	.venv/bin/python benchmarks/experiment_overhead.py
	.venv/bin/python benchmarks/heldout_overhead.py

bench-verl: setup-verl
	.venv-verl/bin/python benchmarks/verl_advantage.py
