# The two commands of the README contract are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# What `make run` passes to `consentbox panel` (e.g. RUN_ARGS='--port 8471').
RUN_ARGS ?=
# Installs the Debian packages a target needs that are missing, saying which and why (system-packages.txt).
SYSTEM_PACKAGES := $(PYTHON) tools/system-packages

# The age community test vectors (C2SP CCTV), as the npm registry ships them; pinned by digest.
CCTV_VERSION := 0.2.0
CCTV_SHA512 := d5f88601a5abfac9ea82ef3eb820bba8f780a40bae78e112113da7a4a7b41552d8f87b9ff8a9226bcf51c9bc7fba818d0a6977d528008e2408785398e0adcd7b
CCTV := .cache/cctv-age-$(CCTV_VERSION)/index.js

.PHONY: run test bench vectors diagram clean deb

$(VENV)/.installed: pyproject.toml system-packages.txt
	@$(SYSTEM_PACKAGES) venv
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[box,test]'
	touch $@

$(CCTV): | test-packages
	mkdir -p $(dir $@)
	cd $(dir $@) && npm pack --silent cctv-age@$(CCTV_VERSION) >/dev/null
	echo "$(CCTV_SHA512)  $(dir $@)cctv-age-$(CCTV_VERSION).tgz" | sha512sum --check --quiet
	tar -xzf $(dir $@)cctv-age-$(CCTV_VERSION).tgz -C $(dir $@) --strip-components=1 package/index.js

# typage (npm's age-encryption, by age's author), a second age implementation with the post-quantum and tag
# types that Debian's age 1.1.1 lacks: tests/crypto/test_interop_pq.py runs it with node. Its package-lock.json
# pins it and each of its dependencies by SHA-512, which npm ci checks.
TYPAGE_LOCK := tests/crypto/typage/package.json tests/crypto/typage/package-lock.json
TYPAGE := .cache/typage/node_modules/age-encryption/package.json

$(TYPAGE): $(TYPAGE_LOCK) | test-packages
	mkdir -p .cache/typage
	cp $(TYPAGE_LOCK) .cache/typage/
	cd .cache/typage && npm ci --silent --ignore-scripts --no-audit --no-fund

vectors: $(CCTV) $(TYPAGE)

# The box runs Debian bookworm's python3-cryptography 38.0.4: a second venv with that version, made once,
# in which `make bench` runs ours again, its figures in a column beside this venv's (bench/columns.py), and
# tests/crypto/test_old_cryptography.py checks what a box without HPKE and ML-KEM does with post-quantum keys.
BOOKWORM_CRYPTO := .cache/bench-crypto38
$(BOOKWORM_CRYPTO)/.installed: pyproject.toml
	test -x $(BOOKWORM_CRYPTO)/bin/python || $(PYTHON) -m venv $(BOOKWORM_CRYPTO)
	$(BOOKWORM_CRYPTO)/bin/python -m pip install --quiet -e '.[box]' cryptography==38.0.4
	touch $@

# A type error or a lint finding fails `make test` before any test runs; what mypy and ruff check, and
# how, is [tool.mypy] and [tool.ruff] in pyproject.toml.
.PHONY: lint typecheck ruff
lint: typecheck ruff

typecheck: $(VENV)/.installed
	$(PY) -m mypy

ruff: $(VENV)/.installed
	$(VENV)/bin/ruff check firmware bench tests packaging/build-deb packaging/manpage.py deploy/wiring.py tools/system-packages

# Checked at every run: the tests need the tools, not only the build.
.PHONY: test-packages
test-packages:
	@$(SYSTEM_PACKAGES) test

test: test-packages lint $(VENV)/.installed $(BOOKWORM_CRYPTO)/.installed $(CCTV) $(TYPAGE)
	$(PY) -m pytest $(PYTEST_ARGS)

# The box on Debian's kernel and systemd in a QEMU machine, its card exFAT then FAT32 (tests/vm; as root).
# `make test` runs it too.
.PHONY: vm-test
vm-test: test-packages $(VENV)/.installed
	$(PY) -m pytest tests/vm $(PYTEST_ARGS)

# The box simulated in real time, its front panel a page on http://127.0.0.1:8470/ ([web] port); Ctrl+C stops it.
run: $(VENV)/.installed
	$(VENV)/bin/consentbox panel --home .demo/panel $(RUN_ARGS)

# A scripted session in virtual time (testing/scenarios/demo.txt), then the supervisor's export.
.PHONY: demo
demo: $(VENV)/.installed
	$(PY) -m consentbox.sim.demo

# Also writes bench/report.txt, the run's report, which BENCHMARKS.md quotes (commit both).
bench: $(VENV)/.installed $(BOOKWORM_CRYPTO)/.installed
	@$(SYSTEM_PACKAGES) bench
	$(PY) -m bench $(BOOKWORM_CRYPTO)/bin/python

# Every figure the docs quote against the command that prints it (bench/figures.py): checks the marks,
# then runs each source's test, the slow system tests among them (make test runs the same tests).
.PHONY: docs-check
docs-check: $(VENV)/.installed
	$(PY) -m bench.figures

# The Debian package, $(DEB_DIR)/consentbox_<version>_all.deb (packaging/README.md).
DEB_DIR ?= build/deb

deb: $(VENV)/.installed
	$(PY) packaging/build-deb $(DEB_DIR)

# The core does no I/O, so the page is written here: render() only returns it.
diagram: $(VENV)/.installed
	$(PY) -c 'import sys; from consentbox.core.diagram import render; sys.stdout.write(render())' > docs/session.md

clean:
	rm -rf $(VENV) .cache .demo .pytest_cache .hypothesis .mypy_cache

# Draws deploy/wiring.svg and the pin table in deploy/README.md from the [panel] pins of defaults.toml
# (standard library only); tests/test_wiring_diagram.py fails until this is run after a pin change.
.PHONY: wiring
wiring:
	$(PYTHON) deploy/wiring.py
