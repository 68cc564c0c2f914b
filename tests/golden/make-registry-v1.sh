#!/usr/bin/env bash
# Wrote registry-v1/: a registry made by mreg 0.1.0 (layout format 1), kept as it was
# written so that tests/cli/golden_registry.rs can check that every later mreg reads it
# the same way. Do not run this again to "update" the fixture: a registry from an older
# mreg is the point. A new layout format gets a new folder and a new script.
#
#   MREG=target/debug/mreg bash tests/golden/make-registry-v1.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
fixtures="$here/../../fixtures"
mreg="$(realpath "${MREG:-$here/../../target/debug/mreg}")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir bin && ln -s "$mreg" bin/mreg
export PATH="$work/bin:$PATH" MREG_ACTOR=golden@fixtures NO_COLOR=1 MREG_REGISTRY="$work/.mreg"
clock=1767225600 # 2026-01-01T00:00:00Z; each command one minute later
m() { clock=$((clock + 60)); MREG_NOW=$clock mreg "$@"; }

cp -r "$fixtures/models/tiny-v1" v1
cp -r "$fixtures/models/tiny-v2" v2
cp "$fixtures"/{params.yaml,eval.json,eval-v2.json,metrics.jsonl,metrics-v2.jsonl} .
printf 'id,churned\n1,0\n2,1\n' > train.csv
# A series long enough to be kept in an object rather than inline.
for i in $(seq 1 20); do printf '{"step": %d, "loss": 0.%02d}\n' "$i" $((90 - i * 3)); done > long.jsonl

m init "$work"
m run --experiment churn --name base --params-file params.yaml --data train.csv \
  --store-data --tag team=growth -- \
  sh -c 'mreg log --metrics-file metrics.jsonl && mreg log --metrics-file long.jsonl &&
         mreg push v1 --model churn --metrics-file eval.json --message "first training run"'
m push v2 --model churn --parent churn@1 --params-file params.yaml \
  --param optimizer.lr=0.0005 --metrics-file metrics-v2.jsonl --metrics-file eval-v2.json \
  --data s3://datasets/churn/train.csv@v7 --message "fine-tuned head" --experiment churn
m promote churn@1 staging
m promote churn@1 production --gate 'acc>0.85'
m promote churn@2 production --gate 'acc>=@production+0.05' || test $? -eq 3
m promote churn@2 production --gate 'acc>=@production-0.005'
m rollback churn production --reason 'p99 latency regression'
m push v1 --model tiny --metrics-file eval.json

out="$here/registry-v1"
rm -rf "$out"
mkdir "$out"
cp -r "$work/.mreg/." "$out/"
rm -rf "$out/tmp" "$out/cache"
find "$out" -type f -exec chmod u+w {} +
echo "wrote $out"
