#!/usr/bin/env bash
# The chain of README.md on this machine, with this folder's own configs, in about two
# minutes: a registry (a bare git remote and a directory DVC remote in a temp dir), a
# serving host (`mvctl pull --watch` + `mvctl serve`), `mvctl webhook serve` in a clone of
# the registry, Prometheus and Alertmanager. v1 serves traffic; v2 is promoted and fails
# every live request; Prometheus fires MvctlHighErrorRate, Alertmanager calls the webhook,
# the webhook rolls production back and pushes, and the host swaps v1 back in.
#
#   bash examples/observability/try.sh        (mvctl on PATH: `make demo` once gives .venv/bin)
#
# It uses the ports the configs name (8080, 9090, 9093, 9465, 9466) and leaves nothing behind.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
prometheus="$(command -v prometheus || true)"
alertmanager="$(command -v prometheus-alertmanager || command -v alertmanager || true)"
if [ -z "$prometheus" ] || [ -z "$alertmanager" ]; then
  echo "try.sh needs prometheus and alertmanager: apt-get install prometheus prometheus-alertmanager" >&2
  exit 2
fi
command -v mvctl >/dev/null || { echo "try.sh needs mvctl on PATH (make demo, then .venv/bin)" >&2; exit 2; }
python - <<'EOF' || exit 2
import socket, sys
busy = []
for port in (8080, 9090, 9093, 9465, 9466):
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            busy.append(str(port))
if busy:
    sys.exit(f"try.sh: port {', '.join(busy)} in use on 127.0.0.1 (the configs name it)")
EOF

work="$(mktemp -d "${TMPDIR:-/tmp}/mvctl-observability.XXXXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
export DVC_NO_ANALYTICS=1
export GIT_AUTHOR_NAME="${GIT_AUTHOR_NAME:-mvctl example}" GIT_AUTHOR_EMAIL="${GIT_AUTHOR_EMAIL:-example@example.com}"
export GIT_COMMITTER_NAME="${GIT_COMMITTER_NAME:-$GIT_AUTHOR_NAME}" GIT_COMMITTER_EMAIL="${GIT_COMMITTER_EMAIL:-$GIT_AUTHOR_EMAIL}"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step() { printf '\033[1m$ %s\033[0m\n' "$*"; "$@"; }
logs() { for f in "$work"/logs/*.log; do echo "--- $f"; tail -n 20 "$f"; done; }
# until SECONDS WHAT COMMAND...: run COMMAND every second until it succeeds.
until_ok() {
  local deadline=$((SECONDS + $1)) what="$2"
  shift 2
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "timed out waiting for $what" >&2
      logs >&2
      exit 1
    fi
    sleep 1
  done
}
serves() { mvctl pull --status --dest "$work/host" --json | grep -q "\"version\": \"$1\""; }
rolled_back() {
  git -C "$work/registry" fetch -q --tags --force origin &&
    (cd "$work/registry" && mvctl history fraud --json) | grep -q '"kind": "rollback"'
}

answered_by_v1() { tail -n 1 "$work/logs/traffic.log" | grep -Eq '^traffic, last 5 s: v1\.0\.0 x[0-9]+$'; }

say "A registry: git remote $work/origin.git, DVC remote $work/storage"
git init -q --bare -b main "$work/origin.git"
git init -q -b main "$work/registry"
cd "$work/registry"
git remote add origin "$work/origin.git"
printf 'model/metrics.json\n' > .gitignore
git add .gitignore
git commit -q -m "Fraud model registry"
mvctl init --storage "$work/storage" >/dev/null
step python "$here/fraud.py" train --features 30 --out model
step mvctl register fraud --weights model/fraud.skops --metrics model/metrics.json --version v1.0.0
step mvctl promote fraud v1.0.0 --to production --reason "first release"

say "The configs of this folder, tokens made for this run"
cp "$here"/prometheus.yml "$here"/rules.yml "$here"/alertmanager.yml "$work/"
mkdir -m 700 "$work/tokens" "$work/logs"
for name in serve metrics webhook; do
  python -c 'import secrets; print(secrets.token_hex(32))' > "$work/tokens/$name.token"
done
cd "$work"
step promtool check config prometheus.yml >/dev/null
step amtool check-config alertmanager.yml >/dev/null

say "The host, the webhook, Prometheus and Alertmanager (logs in $work/logs)"
git clone -q "$work/origin.git" "$work/webhook"
mvctl pull "$work/origin.git" fraud --channel production --dest "$work/host" >/dev/null
# background NAME DIR COMMAND...: COMMAND started in DIR, its output in logs/NAME.log.
background() {
  local name="$1" dir="$2"
  shift 2
  echo "$ (cd $dir && $*) &"
  (cd "$dir" && exec "$@") > "$work/logs/$name.log" 2>&1 &
  pids+=($!)
}
background pull "$work" mvctl pull "$work/origin.git" fraud --channel production --dest "$work/host" \
  --watch --interval 5 --metrics-port 9466 --metrics-token-file tokens/metrics.token
background serve "$work" mvctl serve "$work/host" --port 8080 --token-file tokens/serve.token
background webhook "$work/webhook" mvctl webhook serve --port 9465 --token-file "$work/tokens/webhook.token"
background prometheus "$work" "$prometheus" --config.file=prometheus.yml --storage.tsdb.path="$work/tsdb" \
  --web.listen-address=127.0.0.1:9090 --log.level=warn
background alertmanager "$work" "$alertmanager" --config.file=alertmanager.yml --storage.path="$work/am" \
  --web.listen-address=127.0.0.1:9093 --cluster.listen-address= --log.level=warn
until_ok 60 "mvctl serve" python -c 'import urllib.request as u; u.urlopen("http://127.0.0.1:8080/v2/health/ready", timeout=2)'
until_ok 60 "Prometheus" python -c 'import urllib.request as u; u.urlopen("http://127.0.0.1:9090/-/ready", timeout=2)'
background traffic "$work" python "$here/fraud.py" traffic --url http://127.0.0.1:8080/v2/models/fraud/infer \
  --token-file tokens/serve.token --seconds 240

say "v2 is trained on a feature the live callers do not send: promoted anyway"
cd "$work/registry"
step python "$here/fraud.py" train --features 31 --out model
step mvctl register fraud --weights model/fraud.skops --metrics model/metrics.json --version v2.0.0
step mvctl promote fraud v2.0.0 --to production --reason "retrained with the new feature"
until_ok 30 "the host serving v2.0.0" serves v2.0.0
echo "the host serves v2.0.0; every request fails. Waiting for Prometheus (30 s 'for:'), Alertmanager and the webhook..."
until_ok 150 "the webhook's rollback on the remote" rolled_back
say "Rolled back by the alert, and published"
step mvctl history fraud
until_ok 30 "the host serving v1.0.0 again" serves v1.0.0
say "The host swapped v1.0.0 back in"
step mvctl pull --status --dest "$work/host"
until_ok 20 "5 s of traffic answered by v1.0.0 only" answered_by_v1
say "What the callers saw"
cat "$work/logs/traffic.log"
grep '^{' "$work/logs/webhook.log" | tail -n 3 || tail -n 3 "$work/logs/webhook.log"
