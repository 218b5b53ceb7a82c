#!/usr/bin/env bash
# One short check of reportgen on a CUDA GPU (about 3-6 minutes on one H100), from the
# repository root:   benchmarks/gpu_check.sh
#
# It runs with the machine's own python3 (PYTHON=... to choose another), which must have a
# CUDA build of torch, transformers, accelerate, safetensors, tokenizers, numpy, scipy,
# jinja2, pyyaml, pytest; the few packages reportgen needs beyond those travel as wheels in
# .whl/ (made by benchmarks/gpu_wheels.sh on a machine with network) and are installed into
# /tmp/site, never over the machine's packages. The repository is used from PYTHONPATH (not
# pip-installed: its pyproject pins a CPU torch). Nothing is downloaded.
#
# Steps (each time-boxed; one failing does not stop the others):
#   env     torch sees a CUDA GPU (else it stops here, exit 3, saying so)
#   tests   the tests marked gpu (pytest -m gpu): k-NN, CKA, SAE on cuda vs the CPU path
#   parity  a small Llama-shaped model, the same audit on the CPU and on cuda: every number
#   big     a ~1B Llama-shaped random model in bfloat16 on cuda: the audit, the ratio of its
#           time to bare forwards, the certificate's shape against the small CPU audit
# Output: $OUT/gpu_check.log (everything printed) and $OUT/RESULTS-gpu.md (a block for
# benchmarks/RESULTS.md, the device named). Exit 0 when every step passed.
set -u
OUT=${OUT:-/tmp/gpu_out}
PY=${PYTHON:-python3}
mkdir -p "$OUT/steps" && OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/steps/*.md
exec > >(tee "$OUT/gpu_check.log") 2>&1
cd "$(dirname "$0")/.." || exit 2

if compgen -G ".whl/*.whl" > /dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
    .whl/*.whl || echo "warning: installing .whl/ into /tmp/site failed"
fi
export PYTHONPATH=/tmp/site:$PWD
export OUT PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
WORK=${WORK:-$(mktemp -d /tmp/gpu-check-XXXXXX)}
T0=$SECONDS
declare -A STATUS

step() {  # step NAME SECONDS COMMAND...: run it time-boxed, record PASS / FAIL / TIMEOUT
  local name=$1 limit=$2 rc
  shift 2
  echo "=== $name (at most ${limit}s) ==="
  local t=$SECONDS
  timeout --kill-after=10 "$limit" "$@"
  rc=$?
  if [ "$rc" -eq 0 ]; then STATUS[$name]=PASS
  elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then STATUS[$name]="FAIL (timed out after ${limit}s)"
  else STATUS[$name]="FAIL (exit $rc)"; fi
  echo "=== $name: ${STATUS[$name]} in $((SECONDS - t))s ==="
  return "$rc"
}

report() {
  {
    echo "## gpu_check ($(date -u +%Y-%m-%d) UTC, commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown))"
    echo
    echo "Command: \`benchmarks/gpu_check.sh\` (total $((SECONDS - T0)) s)"
    echo
    for name in env tests parity big; do
      [ -n "${STATUS[$name]:-}" ] || continue
      echo "### $name: ${STATUS[$name]}"
      [ -f "$OUT/steps/$name.md" ] && cat "$OUT/steps/$name.md"
      echo
    done
  } > "$OUT/RESULTS-gpu.md"
  echo "wrote $OUT/RESULTS-gpu.md and $OUT/gpu_check.log"
}

step env 30 "$PY" benchmarks/gpu_check.py env
rc=$?
if [ "$rc" -eq 3 ]; then
  echo "gpu_check: stopped: torch in $PY sees no CUDA GPU (see above); nothing else was run"
  report
  exit 3
elif [ "$rc" -ne 0 ]; then
  echo "gpu_check: stopped: $PY cannot import reportgen or its dependencies (see above)"
  report
  exit 1
fi
step tests 80 "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/test_accel.py \
  > "$OUT/steps/tests.out" 2>&1
cat "$OUT/steps/tests.out"
grep -E "passed|failed|error|skipped" "$OUT/steps/tests.out" | tail -n 1 | sed 's/^/- pytest -m gpu: /' \
  > "$OUT/steps/tests.md"
grep -E "^(FAILED|ERROR) " "$OUT/steps/tests.out" | head -n 10 | sed 's/^/  - /' \
  >> "$OUT/steps/tests.md"
step parity 110 "$PY" benchmarks/gpu_check.py parity "$WORK"
step big 140 "$PY" benchmarks/gpu_check.py big "$WORK"
report
for name in env tests parity big; do
  case "${STATUS[$name]}" in PASS) ;; *) echo "gpu_check: FAILED ($name)"; exit 1 ;; esac
done
echo "gpu_check: all steps PASS"
