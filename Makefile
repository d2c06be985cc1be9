# The two newcomer commands (README): `make demo` and `make test`. Both install first (idempotent, cached).
PY := .venv/bin/python
# this clone's package first, even when a shared cached venv's editable install points at another clone
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))

.PHONY: install demo test test-fast lint bench clean zoo-data zoo-train-data-lm
install:
	@scripts/install.sh

demo: install
	$(PY) scripts/demo.py

# pytest exits 5 when it collects no test: that is a broken suite, not a pass
test: install
	@$(PY) -m pytest -q tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

# the unit tests only (no tests/e2e: subprocess pipelines, SIGKILL, torchrun), about a minute
test-fast: install
	@$(PY) -m pytest -q -m "not slow" tests

# ruff (pyflakes, pycodestyle, isort) at 120 columns, ruff.toml; CI runs it before the tests
lint: install
	$(PY) -m ruff check .

# the 300 celebahq256 val faces as the released models' test options read them (README "Model zoo"):
# FaceMesh maps in datasets/celebahq256 (options/test_x8.yml, test_x16.yml), LandmarkNet's in
# datasets/celebahq256_lm (options/release/test_LLVFSR_tail_lm_*.yml)
CELEBAHQ ?= ../shared/data/celebahq256
LM := --mask landmark-net --depth landmark-net
zoo-data: install
	$(PY) datasets_prep/make_dataset.py --hr-dir $(CELEBAHQ)/images/val --split-csv $(CELEBAHQ)/index.csv \
		--splits val --out datasets/celebahq256 --scales 8 16
	$(PY) datasets_prep/extract_priors.py --root datasets/celebahq256 --splits val --scales 8 16 --priors mask depth
	$(PY) datasets_prep/make_dataset.py --hr-dir $(CELEBAHQ)/images/val --split-csv $(CELEBAHQ)/index.csv \
		--splits val --out datasets/celebahq256_lm --scales 8 16
	$(PY) datasets_prep/extract_priors.py --root datasets/celebahq256_lm --splits val --scales 8 16 --priors mask depth $(LM)

# the train faces of the tail_lm releases: the 1,000 celebahq256 train faces LandmarkNet left out (issue 13)
zoo-train-data-lm: install
	$(PY) datasets_prep/make_dataset.py --hr-dir $(CELEBAHQ)/images/train \
		--split-json datasets_prep/splits/celebahq256_unseen_by_landmark_net.json --out datasets/celebahq256_lm --scales 8 16
	$(PY) datasets_prep/extract_priors.py --root datasets/celebahq256_lm --splits train --scales 8 16 --priors mask depth $(LM)

bench: install
	$(PY) benchmarks/bench_speed.py --quick

clean:  # keeps experiments/pretrained_models (the released models are tracked files)
	rm -rf demo_out results tb_logger .pytest_cache
	find experiments -mindepth 1 -maxdepth 1 ! -name pretrained_models -exec rm -rf {} + 2>/dev/null || true
