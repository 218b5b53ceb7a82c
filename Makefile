# Every target creates .venv when missing and installs into it; nothing else is needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo demo-minilm test lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch is installed first and pinned, so pip never pulls the CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/build_demo_models.py
	$(BIN)/reportgen audit specs/demo.yaml; status=$$?; \
	  echo "Certificate: $$(pwd)/out/demo/certificate.html (also .pdf and .json)"; \
	  test $$status -le 1

demo-minilm: $(STAMP)
	$(BIN)/python examples/build_demo_models.py --minilm
	$(BIN)/reportgen audit specs/demo-minilm.yaml; status=$$?; \
	  echo "Certificate: $$(pwd)/out/demo-minilm/certificate.html"; \
	  test $$status -le 1

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check reportgen tests examples benchmarks

# bench_audit.py is issue #8's benchmark (figures in benchmarks/RESULTS.md); the others
# measure one component each. Each prints its figures from one run.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_audit.py
	$(BIN)/python benchmarks/bench_neighbors.py
	$(BIN)/python benchmarks/bench_logprobs.py
	$(BIN)/python benchmarks/bench_decoder.py
	$(BIN)/python benchmarks/bench_sae_train.py

clean:
	rm -rf out .pytest_cache .ruff_cache
