#!/usr/bin/env bash
# The main job on a throwaway local stack: PostgreSQL, a moto server standing in for Secrets
# Manager and SSM, the database secret seeded there, the Lambda binary under a local Runtime API
# invoked with events/migrate.json, then the report and the SSM state it recorded.
# Expects both binaries built (make demo does that first).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="${CARGO_TARGET_DIR:-$HOME/.cache/wishlist-migrator/target}/debug"
PY="$ROOT/.venv/bin/python"
for exe in "$BIN/wishlist-migrate" "$BIN/wishlist-migrator-lambda"; do
    [ -x "$exe" ] || { echo "demo: $exe not built (run make demo)" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/wishlist-demo.XXXXXX")
chmod 755 "$WORK"
MOTO_PID=
cleanup() {
    [ -n "$MOTO_PID" ] && kill "$MOTO_PID" 2>/dev/null || true
    scripts/local-pg.sh stop "$WORK/pg" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }

step "throwaway PostgreSQL"
mkdir -p "$WORK/pg"
scripts/local-pg.sh start "$WORK/pg"
DATABASE_URL=$(scripts/local-pg.sh url "$WORK/pg")

step "moto (Secrets Manager + SSM) on loopback"
MOTO_PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$ROOT/.venv/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo
for _ in $(seq 50); do curl -fsS "$AWS_ENDPOINT_URL/moto-api/" >/dev/null 2>&1 && break; sleep 0.2; done

# The throwaway cluster is plaintext on the loopback, which the function refuses unless told
# this is a local stack; a CloudFormation answer may only go to a loopback ResponseURL.
export APP_ENV=demo DB_SECRET_ID=wishlist/demo/database DB_SSLMODE=disable DB_ALLOW_PLAINTEXT=true
export CFN_RESPONSE_URL_ALLOW=http://127.0.0.1
# The RDS secret format, built from the throwaway cluster's URL.
DATABASE_URL="$DATABASE_URL" "$PY" - <<'PY'
import json, os, urllib.parse, boto3
u = urllib.parse.urlparse(os.environ["DATABASE_URL"])
secret = {"engine": "postgres", "username": u.username, "password": urllib.parse.unquote(u.password),
          "host": u.hostname, "port": u.port, "dbname": u.path.lstrip("/")}
boto3.client("secretsmanager").create_secret(Name=os.environ["DB_SECRET_ID"], SecretString=json.dumps(secret))
print(f"seeded secret {os.environ['DB_SECRET_ID']} ({u.username}@{u.hostname}:{u.port}/{secret['dbname']})")
PY

step "Lambda: events/migrate.json, then events/status.json"
scripts/lambda-invoke.py "$BIN/wishlist-migrator-lambda" events/migrate.json events/status.json \
    2>"$WORK/lambda.log" | "$PY" -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    print("--", r["event"])
    print(json.dumps(r.get("response", r), indent=2))
'

step "SSM state: /wishlist/demo/migrations/state"
"$PY" -c '
import boto3, json
p = boto3.client("ssm").get_parameter(Name="/wishlist/demo/migrations/state")["Parameter"]
print(json.dumps(json.loads(p["Value"]), indent=2))'

step "CLI: wishlist-migrate status"
DATABASE_URL="$DATABASE_URL" "$BIN/wishlist-migrate" status

step "CLI: wishlist-migrate require --version 0001_wish_2007_enums_audit (the deploy gate)"
DATABASE_URL="$DATABASE_URL" "$BIN/wishlist-migrate" require --version 0001_wish_2007_enums_audit

step "CLI: wishlist-migrate history"
DATABASE_URL="$DATABASE_URL" "$BIN/wishlist-migrate" history --limit 5

step "CLI: wishlist-migrate envs (every environment of this local stack)"
"$BIN/wishlist-migrate" envs --prefix /wishlist
