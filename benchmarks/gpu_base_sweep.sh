#!/usr/bin/env bash
# Sweep of demo base models on one GPU (run once through the device tool; results in $OUT).
# Each config: python -m lslo.testbed.demo_base --device cuda ... then the demo (fine-tuning + scores) on the GPU
# with fine-tuning dropout 0 and 0.1. Writes $OUT/summary.json, $OUT/logs.tgz and the two best bases.
set -u
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
OUT=${OUT:-/tmp/sweep_out}; W=/tmp/sweep; mkdir -p $W $OUT
MIN=${MIN:-6.5}; DEV=${DEV:-cuda}; STEPS=${STEPS:-60000}; DEMO_ARGS=${DEMO_ARGS:-}; ONLY=${ONLY:-}
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader || true
python3 -c "import torch,transformers;print(torch.__version__,transformers.__version__,torch.cuda.is_available())"
declare -A CFG=(
 [d128_dr01]="--d-model 128 --ffn 512 --dropout 0.1"
 [d128_dr03]="--d-model 128 --ffn 512 --dropout 0.3"
 [d128_dr02_mt2k]="--d-model 128 --ffn 512 --dropout 0.2 --max-tokens 2048"
 [d192_dr02]="--d-model 192 --ffn 768 --dropout 0.2"
 [d192_dr03]="--d-model 192 --ffn 768 --dropout 0.3"
 [d256_dr01]="--d-model 256 --ffn 1024 --dropout 0.1"
 [d256_dr03]="--d-model 256 --ffn 1024 --dropout 0.3"
 [d256_dr02_mt2k]="--d-model 256 --ffn 1024 --dropout 0.2 --max-tokens 2048"
)
job() {
  local name=$1; shift
  local b=$W/$name
  python3 -m lslo.testbed.demo_base --out $b --seed 0 --device $DEV --steps $STEPS --minutes $MIN --no-sanity "$@" \
    > $W/$name.pretrain.log 2>&1 || { echo "$name pretrain FAILED"; tail -5 $W/$name.pretrain.log; return; }
  for dr in 0.0 0.1; do
    timeout 170 python3 -m lslo.testbed.demo --base $b --out $W/runs/$name-ft$dr --dropout $dr --threads 2 --device $DEV $DEMO_ARGS \
      > $W/$name.demo$dr.log 2>&1 || { echo "$name demo $dr FAILED"; tail -5 $W/$name.demo$dr.log; }
  done
  echo "$name done"
}
for name in ${ONLY:-${!CFG[@]}}; do job $name ${CFG[$name]} & sleep 1; done
wait
python3 - <<'PY'
import json, os, glob, pathlib
W = pathlib.Path("/tmp/sweep"); OUT = pathlib.Path(os.environ.get("OUT", "/tmp/sweep_out"))
res = {}
for b in sorted(p for p in W.iterdir() if p.is_dir() and p.name != "runs"):
    r = {}
    pj = b / "PRETRAIN.json"
    if pj.is_file():
        d = json.loads(pj.read_text())
        r["final_loss"] = d["final_loss"]; r["training"] = {k: v for k, v in d["training"].items() if k != "history"}
        r["history_tail"] = d["training"]["history"][-3:]; r["model"] = d["model"]; r["command"] = d["command"]
        r["rebuild_command"] = d["rebuild_command"]; r["bytes"] = d["weights_bytes"]
    for s in sorted((W / "runs").glob(b.name + "-ft*/demo_summary.json")):
        d = json.loads(s.read_text())
        r[s.parent.name.split("-")[-1]] = {"base": d["base"], "lslo": d["lslo"], "seconds": d["seconds"]}
    res[b.name] = r
(OUT / "summary.json").write_text(json.dumps(res, indent=1))
def score(r):
    v = [r[k]["lslo"]["all"]["chrf++"] for k in r if k.startswith("ft")]
    return max(v) if v else -1
rank = sorted(res, key=lambda n: -score(res[n]))
small = [n for n in rank if not n.startswith("d256")]
pick = list(dict.fromkeys(rank[:1] + small[:1]))
print("ranking", [(n, round(score(res[n]), 2)) for n in rank]); print("pick", pick)
(OUT / "pick.txt").write_text("\n".join(pick) + "\n")
PY
for n in $(cat $OUT/pick.txt); do tar czf - -C $W $n | split -b 15M - $OUT/$n.tgz.part; done
tar czf $OUT/logs.tgz -C $W $(cd $W && ls *.log) runs/*/demo_summary.json 2>/dev/null
ls -la $OUT
