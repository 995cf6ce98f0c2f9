#!/usr/bin/env bash
# One short GPU session (< 8 minutes on an H200): CUDA correctness vs CPU, search
# iteration speed (fp32, bf16) and peak memory, a few hundred retraining steps.
# Runs from a bare machine: no pip install, the repo root goes on PYTHONPATH and
# the torch already installed there is used. Report: stdout and $OUT/gpu_check.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  # prefer the project's venv when it exists (CPU machine), else the system python
  if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY="$(command -v python3 || command -v python)"; fi
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
# hard stop well inside the session budget
exec timeout "${GPU_CHECK_TIMEOUT:-480}" "$PY" -m benchmarks.gpu_check "$@"
