#!/usr/bin/env bash
# The longer tour (`make tour`; `make demo` is the two-minute quickstart): a training repo with
# a local git remote (a bare repo) and a local DVC remote (a directory). Trains a scikit-learn
# classifier on the bundled breast-cancer data, registers two versions, lists and shows them, explains what changed between them, promotes
# them through a gate and rolls production back, serves a weighted canary beside production
# with `mvctl serve`, and proves a fresh clone restores the exact weights. It leaves nothing behind.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/mvctl-tour.XXXXXX")"
trap 'rm -rf "$work"' EXIT

export DVC_NO_ANALYTICS=1
# A fresh machine may have no git identity; the tour brings its own without touching yours.
export GIT_AUTHOR_NAME="${GIT_AUTHOR_NAME:-mvctl demo}" GIT_AUTHOR_EMAIL="${GIT_AUTHOR_EMAIL:-demo@example.com}"
export GIT_COMMITTER_NAME="${GIT_COMMITTER_NAME:-$GIT_AUTHOR_NAME}" GIT_COMMITTER_EMAIL="${GIT_COMMITTER_EMAIL:-$GIT_AUTHOR_EMAIL}"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

git init -q --bare -b main "$work/origin.git"
git init -q -b main "$work/training"
cd "$work/training"
git remote add origin "$work/origin.git"
cp "$here/train.py" train.py
printf 'train:\n  C: 1.0\n  max_iter: 500\n' > params.yaml
printf 'metrics.json\n' > .gitignore
git add train.py params.yaml .gitignore
git commit -q -m "Training code"

step mvctl init --storage "$work/dvc-storage"

step python train.py
step mvctl register cancer --weights models/cancer.skops --data data/train.csv \
  --metrics metrics.json --params params.yaml --description "baseline"

# A new experiment: stronger regularisation, committed like any code change.
printf 'train:\n  C: 0.05\n  max_iter: 500\n' > params.yaml
git commit -q -am "Stronger regularisation"
step python train.py
step mvctl register cancer --weights models/cancer.skops --data data/train.csv \
  --metrics metrics.json --params params.yaml

step mvctl list
step mvctl list cancer
mvctl show cancer@v0.2.0 > "$work/show.txt"
printf '\n\033[1m$ mvctl show cancer@v0.2.0 | head -n 32\033[0m\n'
head -n 32 "$work/show.txt"
step gto show cancer
step mvctl lineage cancer
step mvctl diff cancer v0.1.0 v0.2.0
step mvctl diff cancer v0.1.0 v0.2.0 --format markdown

# Channels: a gate on production, two promotions, then the panic button.
cat >> mvctl.yaml <<'YAML'
  cancer:
    gates:
      production:
        - {metric: auc, min: 0.95}
        - {metric: auc, max_drop: 0.01}
    monitors:
      production:
        - {drift: psi, max: 0.25}
        - {drift: ks, alpha: 0.01, correction: bonferroni}
YAML
sed -i 's/^models: {}$/models:/' mvctl.yaml
git commit -q -am "Production gates for cancer"
step mvctl validate cancer v0.1.0 --channel production
step mvctl promote cancer v0.1.0 --to production --reason "first release"
# A serving host: no clone, just the git URL; it downloads, verifies and swaps.
step mvctl pull "$work/origin.git" cancer --channel production --dest "$work/host"
step mvctl promote cancer v0.2.0 --to production
step mvctl pull "$work/origin.git" cancer --channel production --dest "$work/host"
step mvctl rollback cancer --reason "false positives up on live traffic"
# The serving host follows: v0.1.0 is still on its disk, so this is a local swap.
step mvctl pull "$work/origin.git" cancer --channel production --dest "$work/host"
step mvctl pull --status --dest "$work/host"

# Canary: v0.2.0 again, this time on a fifth of the traffic beside production. The host
# follows both channels into one directory, and `mvctl serve` answers from it.
step mvctl promote cancer v0.2.0 --to canary --weight 20 --reason "try v0.2.0 on 20% of traffic"
step mvctl pull "$work/origin.git" cancer --channel production --channel canary --dest "$work/host"
python -c 'import secrets; print(secrets.token_hex(16))' > "$work/token"
port="$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export MVCTL_DEMO_URL="http://127.0.0.1:$port" MVCTL_DEMO_TOKEN_FILE="$work/token"
printf '\n\033[1m$ mvctl serve %s --port %s --token-file token &\033[0m\n' "$work/host" "$port"
mvctl serve "$work/host" --port "$port" --token-file "$work/token" \
  --decision-log "$work/decisions.jsonl" > "$work/serve.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  python -c 'import os, urllib.request; urllib.request.urlopen(os.environ["MVCTL_DEMO_URL"] + "/v2/health/ready", timeout=1)' 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || { cat "$work/serve.log"; exit 1; }
  sleep 0.1
done
step python "$here/client.py" infer
# Sticky by request key: the same customers reach the canary on every request and replica.
step python "$here/client.py" share 1000 --expect v0.2.0=20
step mvctl canary weight cancer 50 --reason "no regressions at 20%"
step mvctl pull "$work/origin.git" cancer --channel production --channel canary --dest "$work/host"
step python "$here/client.py" share 1000 --expect v0.2.0=50
step mvctl canary stop cancer --reason "recall down on the canary's share"
step mvctl pull "$work/origin.git" cancer --channel production --channel canary --dest "$work/host"
step python "$here/client.py" share 1000 --expect v0.2.0=0
printf '\n\033[1m$ tail -n 2 decisions.jsonl\033[0m\n'
tail -n 2 "$work/decisions.jsonl"
kill "$server"; wait "$server" || true
step mvctl history cancer

# Monitors: live batches checked against the reference profile stored with the version.
python - <<'PY'
import numpy as np, pandas as pd
train = pd.read_csv("data/train.csv")
train.sample(300, random_state=1).to_csv("live-ok.csv", index=False)
drifted = train.sample(300, random_state=2)
drifted["mean_radius"] *= 1.6          # a sensor recalibrated upstream
drifted.to_csv("live-drifted.csv", index=False)
PY
step mvctl monitor cancer --live live-ok.csv
printf '\n\033[1m$ mvctl monitor cancer --live live-drifted.csv\033[0m\n'
mvctl monitor cancer --live live-drifted.csv || echo "(exit $?: a breach; add --rollback to roll production back)"
step mvctl list
step mvctl check

# A second machine: clone the registry, check out the version, pull its weights with DVC.
step git clone -q "$work/origin.git" "$work/clone"
cd "$work/clone"
step git checkout -q cancer@production
step dvc pull -q
want="$(mvctl show cancer@production --json | python -c 'import json,sys; print(json.load(sys.stdin)["manifest"]["weights"][0]["sha256"])')"
got="$(sha256sum models/cancer.skops | cut -d' ' -f1)"
printf '\nmanifest sha256 %s\nrestored sha256 %s\n' "$want" "$got"
[ "$want" = "$got" ] || { echo "restored weights differ from the manifest" >&2; exit 1; }
printf '\n\033[32mtour finished: two versions registered, compared, promoted and rolled back, a sticky canary served and stopped; production restored byte for byte on a clone\033[0m\n'
