# Two commands for a newcomer: `make run` and `make test`. Both install what is missing first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip --disable-pip-version-check -q
# torch comes first and pinned: an unpinned install pulls a multi-GB CUDA build.
CONSTRAINTS := -c constraints.txt
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install ocr-tools bench-tools run test test-fast docs examples quality quality-configs bench clean

install: $(VENV)/.installed ocr-tools

# Scanned PDF pages are OCR'd with Debian's tesseract-ocr: installed when missing and apt-get can run
# without asking (as root); otherwise a note, and such pages are reported as unread at ingest.
ocr-tools:
	@command -v tesseract >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    if { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr tesseract-ocr-eng; } \
	         >/tmp/km-tesseract.log 2>&1; then echo "installed tesseract-ocr"; \
	    else echo "could not install tesseract-ocr (see /tmp/km-tesseract.log): scanned PDF pages will not be read" >&2; fi; \
	  else echo "note: tesseract-ocr is not installed, so scanned PDF pages will not be read" \
	    "(Debian: sudo apt-get install tesseract-ocr tesseract-ocr-eng)" >&2; fi; }

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(CONSTRAINTS) torch==2.13.0
	$(PIP) install $(CONSTRAINTS) -e '.[dev]'
	touch $@

run: install
	$(BIN)/km ingest examples/corpus --index example
	KM_AUTH=none KM_INDEX=example $(BIN)/km serve  # single-user demo: no authentication (see README, Access control)

test: install
	$(BIN)/python -m pytest

test-fast: install  # unit tests only (no real model, no server, no browser): the quick loop while coding
	$(BIN)/python -m pytest -m "not slow and not browser"

docs: install  # the reference pages generated from the code: docs/configuration.md, docs/cli.md, docs/index.md
	$(BIN)/python docs/reference.py

quality: install  # the bench of many genres (~5 min quiet): baselines and the default on every labelled set -> bench/genres.json, docs/quality.md
	$(BIN)/python bench/genres.py

quality-configs: install  # every configuration on the passage-level sets -> bench/quality.json, docs/quality.md
	$(BIN)/python bench/quality.py

bench: install bench-tools  # performance (issue 9) -> bench/results.json, docs/performance.md; BENCH_QUICK=1, BENCH_SIZES=10k,100k,1m, BENCH_PARTS=embed,ingest,http
	$(BIN)/python bench/bench.py

# What the bench reads and runs besides the project: the HTML of Debian's python3.11-doc (its large real
# corpus: ingest, first_ingest, http_real) and wrk (concurrent clients: http, http_real). Installed when
# missing and apt-get can run without asking (as root); otherwise a note, and those rows stay empty.
bench-tools:
	@{ test -d /usr/share/doc/python3.11/html && command -v wrk >/dev/null 2>&1; } || { \
	  if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    if { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11-doc wrk; } \
	         >/tmp/km-bench-tools.log 2>&1; then echo "installed python3.11-doc and wrk"; \
	    else echo "could not install python3.11-doc and wrk (see /tmp/km-bench-tools.log)" >&2; fi; \
	  else echo "note: the bench reads Debian's python3.11-doc and drives wrk (sudo apt-get install python3.11-doc wrk)" >&2; fi; }

examples: install
	$(BIN)/python examples/build_examples.py

clean:
	rm -rf $(VENV) indexes/*/ .pytest_cache
