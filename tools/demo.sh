#!/usr/bin/env bash
# `make demo`: a real transfer end to end on the embedded defaults.
# Starts an S3 server on loopback, creates the sandbox from examples/fixture.yml, applies
# examples/transfers/ (and then again, to show that a completed transfer is left alone).
set -euo pipefail
DEMO_DIR=${DEMO_DIR:-demo}
rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"
ENV_FILE="$DEMO_DIR/s3.env"

python tools/local_s3.py start --data "$DEMO_DIR/s3" --env-file "$ENV_FILE" --bucket transfer-exports
trap 'python tools/local_s3.py stop --env-file "$ENV_FILE"' EXIT
# shellcheck disable=SC1090
source "$ENV_FILE"

export TRANSFER_RUNNER_PLATFORM="sandbox:$DEMO_DIR/sandbox.db"
export TRANSFER_RUNNER_STATE="sqlite:$DEMO_DIR/state.db"
export TRANSFER_RUNNER_EXPORT_TO="s3://transfer-exports/demo"

step() { printf '\n== %s\n' "$*"; }

step "transfer-runner sandbox init $DEMO_DIR/sandbox.db --fixture examples/fixture.yml"
transfer-runner sandbox init "$DEMO_DIR/sandbox.db" --fixture examples/fixture.yml

step "transfer-runner validate examples/transfers"
transfer-runner validate examples/transfers

step "transfer-runner plan examples/transfers   (exit 2: changes pending)"
transfer-runner plan examples/transfers || [ $? -eq 2 ]

step "transfer-runner apply examples/transfers --yes"
transfer-runner apply examples/transfers --yes --report-json "$DEMO_DIR/report.json" \
  --retry-file "$DEMO_DIR/transfer-runner.retry"

step "transfer-runner -q apply examples/transfers --yes   (again: nothing to do)"
transfer-runner -q apply examples/transfers --yes --retry-file "$DEMO_DIR/transfer-runner.retry"

step "transfer-runner status"
transfer-runner status

step "The platform afterwards (transfer-runner sandbox dump, summarised)"
transfer-runner sandbox dump "$DEMO_DIR/sandbox.db" | python tools/demo_summary.py

step "Exports on S3 ($AWS_ENDPOINT_URL)"
python - <<'PY'
import boto3
s3 = boto3.client("s3")
pages = s3.get_paginator("list_objects_v2").paginate(Bucket="transfer-exports", Prefix="demo/")
for page in pages:
    for obj in page.get("Contents", []):
        print(f"  s3://transfer-exports/{obj['Key']:<45} {obj['Size']:>10} bytes")
PY
step "transfer-runner report --format html --run RUN --out $DEMO_DIR/report.html   (the first apply)"
run_id=$(python -c "import json, sys; print(json.load(open(sys.argv[1]))['run_id'])" "$DEMO_DIR/report.json")
transfer-runner report --format html --run "$run_id" --out "$DEMO_DIR/report.html"
transfer-runner report --list

echo
echo "Report: $DEMO_DIR/report.html (open it in a browser; it loads nothing)   JSON: $DEMO_DIR/report.json"
echo "State: $DEMO_DIR/state.db   Sandbox: $DEMO_DIR/sandbox.db"
