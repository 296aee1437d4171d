#!/usr/bin/env bash
# Continue the testbed base's pretraining on a lent GPU, as one `run` call of the device tool,
# then export it in files the tool can bring back (each < 16 MB, at most 8 files).
#
# Prepare here (CPU), once:
#   python -m lslo.testbed.corpus --out data/testbed                     # -> build/testbed/pretrain.jsonl
#   python -m lslo.testbed.pretrain prepare --corpus build/testbed/pretrain.jsonl \
#       --work build/gpu-work --tokenizer data/testbed/base               # 10.5 MB: tokenizer + tokens.npz
# Run there (carry build/gpu-work; the committed data/testbed/base travels with the tree):
#   bash benchmarks/gpu_pretrain.sh            # MIN=8 minutes of bf16 training by default
# Back here: copy $OUT/base/* over data/testbed/base/ (weights, PRETRAIN.json, resume.json),
# rerun the evaluation in the README, commit.
#
# Test it here at tiny scale first:  DEVICE=cpu MIN=0.2 BF16= WORK=... FROM=... OUT=/tmp/o bash benchmarks/gpu_pretrain.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
PY=${PY:-python3}
MIN=${MIN:-8}
DEVICE=${DEVICE:-cuda}
BF16=${BF16---bf16}
WORK=${WORK:-build/gpu-work}
FROM=${FROM:-data/testbed/base}
MAX_TOKENS=${MAX_TOKENS:-32000}       # 8x the CPU batch: a GPU is efficient only with large batches
OUT=${OUT:?set OUT to the folder whose files come back}
[ -f "$WORK/prepare.json" ] || { echo "gpu_pretrain: $WORK/prepare.json missing (carry the prepared work folder)" >&2; exit 2; }
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
# --steps is a ceiling; --minutes stops it (with a checkpoint) in time for the export
$PY -m lslo.testbed.pretrain train --work "$WORK" --from "$FROM" --device "$DEVICE" $BF16 --minutes "$MIN" \
    --steps 100000000 --save-minutes 3 --threads 8 --max-tokens "$MAX_TOKENS" 2>&1 | tail -n 40 | tee "$OUT/train.log"
mkdir -p "$OUT/base"
$PY -m lslo.testbed.pretrain export --work "$WORK" --out "$OUT/base.full" --dtype float16 --max-shard-size 15MB --portable
# bring back only what the committed folder lacks or changes (weights, their index, records)
cp "$OUT"/base.full/model*.safetensors* "$OUT"/base.full/PRETRAIN.json "$OUT"/base.full/resume.json "$OUT/base/"
rm -rf "$OUT/base.full"
ls -la "$OUT/base"
