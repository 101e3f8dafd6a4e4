#!/bin/bash
# usage: crisis3_run.sh TAG WORLDS "ENV=.. ENV=.." (from a tree with issue21-crisis3.patch applied; JOBS, LOGDIR; cache path as used on 2026-12-08)
tag=$1; worlds=$2; vars=$3
env $vars nice -n 10 /work/main/.venv/bin/python -m benchmarks.methods --seeds 20 --scale small --jobs ${JOBS:-2} --worlds $worlds --tag $tag --cache /work/i21cache > ${LOGDIR:-.}/run-$tag.log 2>&1
f=$(grep -o "written: .*" ${LOGDIR:-.}/run-$tag.log | cut -d' ' -f2)
/work/main/.venv/bin/python - "$f" "$vars" <<'PY'
import json,sys
f,v=sys.argv[1],sys.argv[2]
d=json.load(open(f)); d["args"]["variant"]="benchmarks/experiments/issue21-crisis3.patch with "+(v or "no switches (= HEAD)")
open(f,"w").write(json.dumps(d,indent=1)+"\n")
PY
echo done $tag $f
