#!/usr/bin/env bash
# Download, on a machine with network, the wheels benchmarks/gpu_check.sh installs on a GPU
# machine without one: what reportgen needs for a JSON + HTML audit beyond the machine's own
# packages (torch with CUDA, transformers, accelerate, numpy, scipy, jinja2, pyyaml, pytest,
# narwhals, attrs, ...), pinned to the versions the tests run with here, for CPython 3.12 on
# x86-64 Linux. Not included: typst (the PDF; 34 MB, and the check writes none),
# umap-learn (the projection; the check's specs turn it off) and cryptography (signing).
# Usage, from the repository root:  benchmarks/gpu_wheels.sh   (writes .whl/, git-ignored)
set -eu
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WHEELS=(
  pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
  typing-extensions==4.16.0
  altair==6.3.0 vl-convert-python==1.9.0.post1
  jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0
  rpds-py==2026.9.1
)
mkdir -p .whl
for w in "${WHEELS[@]}"; do
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl "$w"
done
du -sh .whl
ls .whl
