# Set-up is two commands on a fresh clone: `make search` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RESULTS ?= results
# the `small` space's default baselines (its `baselines:` section)
BASELINES := pvt_v2_b0,swin_t
REPORT := $(RESULTS)/small/report
RESULTS_ARG := $(if $(filter results,$(RESULTS)),,--results-dir $(RESULTS))
STUDY_N := study:small:N$(if $(filter results,$(RESULTS)),,@$(RESULTS))

.PHONY: install search test test-fast timm-suite bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The small search with the official shapes seeded and the Swin/PVT baselines trained alike,
# then its report; it ends by saying where the report is and what to run next.
search: $(STAMP)
	$(PY) cli.py search --space small --seed-official --baselines $(BASELINES) --results-dir $(RESULTS)
	$(PY) cli.py report small --results-dir $(RESULTS)
	@echo
	@echo "report:     $(REPORT)/report.md"
	@echo "front plot: $(REPORT)/top1_vs_gflops.png"
	@echo "next: pick a trial N on the front (report.md lists them), then"
	@echo "  $(PY) cli.py profile $(STUDY_N) dualvit_s --res 224   # its cost at full size"
	@echo "  $(PY) cli.py export small --trial N $(RESULTS_ARG)  # its config, for train/profile"

test: $(STAMP)
	$(PY) -m pytest

# the edit-test loop: everything not marked slow (CI runs everything)
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

# timm's own model tests (tests/test_models.py of the installed timm's sdist) on dualvit_s/b/l;
# downloads the sdist, about 1.5 min on 2 cores
timm-suite: $(STAMP)
	bash .ci/timm-suite $(PY)

bench: $(STAMP)
	$(PY) benchmarks/bench_dualvit_speed.py
	$(PY) benchmarks/bench_train_throughput.py
	$(PY) benchmarks/bench_profile_repeatability.py dualvit_s pvt_v2_b2
	$(PY) benchmarks/bench_search.py
	$(PY) benchmarks/bench_cli_startup.py
	$(PY) benchmarks/bench_grad_checkpointing.py
	$(PY) benchmarks/bench_fidelity.py
	$(PY) benchmarks/bench_prefilter.py
	$(PY) benchmarks/bench_multifidelity.py
	bash .ci/with-postgres $(PY) benchmarks/bench_scaleout.py

clean:
	rm -rf $(VENV) .venv-lowest build *.egg-info .pytest_cache
