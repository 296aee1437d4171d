#!/usr/bin/env bash
# The scale issue's GPU measurements as one `run` call of the device tool (a few minutes):
#   1. benchmarks/speed.py at the full M2M-100 418M depth (12+12 layers, vocabulary 128112), bf16
#      autocast, a real-length batch (48 sentences x 42 + 42 tokens = 4,032 tokens, 12 languages):
#      train-step ratios against shared LoRA and PEFT, peak GPU memory, mixed-direction beam search
#      unmerged / base / merged;
#   2. benchmarks/bf16_check.py: bf16 loss and adapter gradients against fp32 on the same batch.
# Both JSON files land in $OUT; copy them to benchmarks/results/ and put the table in the README.
# The GPU image has torch and transformers; PEFT is optional there (speed.py needs it: carry a
# wheel or skip). Test here first:  DEVICE=cpu LAYERS=1 VOCAB=2000 BATCH=12 LEN=8 OUT=/tmp/g bash benchmarks/gpu_scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
LAYERS=${LAYERS:-12}
VOCAB=${VOCAB:-128112}
BATCH=${BATCH:-48}
LEN=${LEN:-42}
OUT=${OUT:?set OUT to the folder whose files come back}
DTYPE=bf16
[ "$DEVICE" = cpu ] && DTYPE=fp32   # the CPU smoke run checks the wiring, not bf16 speed
$PY benchmarks/speed.py --device "$DEVICE" --dtype "$DTYPE" --layers "$LAYERS" --vocab "$VOCAB" --batch "$BATCH" \
    --src-len "$LEN" --repeats 5 > "$OUT/speed_gpu.json" 2> "$OUT/speed_gpu.log" || { tail -20 "$OUT/speed_gpu.log"; exit 1; }
$PY benchmarks/bf16_check.py --device "$DEVICE" --layers "$LAYERS" --vocab "$VOCAB" --batch "$BATCH" --len "$LEN" \
    --json "$OUT/bf16_check.json" > /dev/null
$PY - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
s = json.load(open(f"{out}/speed_gpu.json"))
b = json.load(open(f"{out}/bf16_check.json"))
print(json.dumps({"device": s["machine"]["device_name"], "ratios": {k: v["value"] for k, v in s["ratios"].items()},
                  "step_peak_bytes": s["memory"]["step_peak_bytes"], "bf16_vs_fp32": {k: b[k] for k in (
                  "loss_abs_diff", "grad_rel_l2_error", "grad_cosine")}}, indent=1))
PY
