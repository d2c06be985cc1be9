# The two newcomer commands (README): `make demo` and `make test`. Both install first (idempotent, cached).
PY := .venv/bin/python
# this clone's package first, even when a shared cached venv's editable install points at another clone
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))

.PHONY: install demo test test-fast lint bench clean
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

bench: install
	$(PY) benchmarks/bench_speed.py --quick

clean:
	rm -rf demo_out experiments results tb_logger .pytest_cache
