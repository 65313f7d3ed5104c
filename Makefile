# Set-up is two commands on a fresh clone: `make search` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install search test bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

search: $(STAMP)
	$(PY) cli.py search --space small

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/bench_dualvit_speed.py
	$(PY) benchmarks/bench_train_throughput.py
	$(PY) benchmarks/bench_profile_repeatability.py dualvit_s pvt_v2_b2
	$(PY) benchmarks/bench_search.py
	bash .ci/with-postgres $(PY) benchmarks/bench_scaleout.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
