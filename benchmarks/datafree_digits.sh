#!/usr/bin/env bash
# Data-free mode on the digits default: a teacher from a normal run, then the data-free run.
set -euo pipefail
out=${1:-benchmarks/results/datafree-digits}
tfgan-compress run --out "$out/gan-run"
tfgan-compress run --mode data-free --teacher "$out/gan-run/teacher.keras" --out "$out/data-free" \
  --config <(echo '{"export": {"min_agreement_float": 0.0, "min_agreement_quantized": 0.0}}')
