#!/usr/bin/env bash
# Benchmarks (issue 5): builds the release binaries, starts a throwaway PostgreSQL cluster
# and runs bench/bench.py, which writes BENCHMARKS.md and bench/latency.png.
#
#   scripts/bench.sh            full run (~15 min), updates BENCHMARKS.md and bench/latency.png
#   QUICK=1 scripts/bench.sh    1-2 min sanity run for CI: small sizes, few repetitions, report
#                               kept out of the tree; exits non-zero only if a benchmark breaks
#   BENCH_ONLY=1,2 ...          run only some parts (development)
#   BENCH_SKIP_BUILD=1 ...      use the release binaries already built, install nothing (development)
#   BENCH_CLI=path ...          time this wishlist-migrate binary instead (e.g. a build of main, to
#                               measure before a change)
#
# The machine is shared, so everything heavy runs under nice; timings are only ever compared
# side by side within one run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
say() { printf 'bench: %s\n' "$*"; }

QUICK=${QUICK:-}
[ "$QUICK" = "0" ] && QUICK=
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/wishlist-migrator/target}
# cargo-lambda and zig come from the venv, as in the Makefile.
export PATH="$ROOT/.venv/bin:$PATH"
CARGO=${CARGO:-cargo}
NICE=(nice -n 10)

find_pg_bin() {
    if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
    local best
    best=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
    if [ -n "$best" ]; then echo "$best"; return; fi
    dirname "$(readlink -f "$(command -v initdb)")"
}
PG_BIN=$(find_pg_bin)

# --- binaries ---------------------------------------------------------------------------------
# The full run measures release builds. QUICK only checks that every benchmark still works, so it
# takes the debug binaries `cargo test` has just built instead of paying for an LTO build in CI.
if [ -n "$QUICK" ]; then PROFILE=debug; PROFILE_FLAG=(); else PROFILE=release; PROFILE_FLAG=(--release); fi
CLI="${BENCH_CLI:-$CARGO_TARGET_DIR/$PROFILE/wishlist-migrate}"
LAMBDA=
[ -f src/bin/wishlist-migrator-lambda.rs ] && LAMBDA="$CARGO_TARGET_DIR/$PROFILE/wishlist-migrator-lambda"
LAMBDA_BROKEN=
if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
    say "building the $PROFILE binaries"
    "${NICE[@]}" "$CARGO" build "${PROFILE_FLAG[@]}" --locked --bin wishlist-migrate
    # A Lambda that does not build breaks part 3 only; the other parts still run and report.
    if [ -n "$LAMBDA" ] && ! "${NICE[@]}" "$CARGO" build "${PROFILE_FLAG[@]}" --locked --bin wishlist-migrator-lambda; then
        LAMBDA_BROKEN="cargo build --bin wishlist-migrator-lambda failed"
        LAMBDA=
    fi
fi
[ -x "$CLI" ] || { say "$CLI is missing" >&2; exit 1; }
[ -z "$LAMBDA" ] || [ -x "$LAMBDA" ] || LAMBDA=

PY="$ROOT/.venv/bin/python"
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in bench/
[ -x "$PY" ] || { say ".venv missing: run make bootstrap" >&2; exit 1; }
"$PY" -c 'import matplotlib' 2>/dev/null || { say "matplotlib missing in .venv: run make bootstrap" >&2; exit 1; }

# The Lambda's memory budget is stated with 300 migrations embedded: a second build of it, with
# part 2's generated history compiled in. Its own target dir and a history rewritten only when it
# changes keep the two builds from invalidating each other.
LAMBDA300=
EMBED_DIR="$CARGO_TARGET_DIR/bench-embed300"
if [ -z "$QUICK" ] && [ -n "$LAMBDA" ]; then
    "$PY" bench/history.py "$EMBED_DIR/history" 300 >/dev/null
    if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
        say "building the release Lambda binary with 300 migrations embedded"
        EMBED_MIGRATIONS_DIR="$EMBED_DIR/history/drizzle" CARGO_TARGET_DIR="$EMBED_DIR/target" \
            "${NICE[@]}" "$CARGO" build --release --locked --bin wishlist-migrator-lambda \
            || LAMBDA_BROKEN="the Lambda build with 300 migrations embedded failed"
    fi
    [ -x "$EMBED_DIR/target/release/wishlist-migrator-lambda" ] && LAMBDA300="$EMBED_DIR/target/release/wishlist-migrator-lambda"
fi

# sqlx-cli is a peer, not a dependency: installed per clone into .tools (gitignored).
SQLX="$ROOT/.tools/sqlx/bin/sqlx"
if [ ! -x "$SQLX" ]; then
    if [ -n "$QUICK" ] || [ -n "${BENCH_SKIP_BUILD:-}" ]; then
        say "sqlx-cli not installed: QUICK mode (or BENCH_SKIP_BUILD) skips the sqlx peer (the full run installs it)"
        SQLX=
    else
        say "installing sqlx-cli into .tools/sqlx (once; several minutes)"
        "${NICE[@]}" "$CARGO" install sqlx-cli --version 0.9.0 --no-default-features \
            --features postgres,native-tls --locked --root "$ROOT/.tools/sqlx"
    fi
fi

# The deployment zip budget is about the artifact sam build deploys: arm64, vendored OpenSSL,
# built by cargo-lambda exactly as `make test` builds it (so after a test run this is cached).
ARTIFACT=
if [ -z "$QUICK" ] && [ -n "$LAMBDA" ] && [ -f CargoLambda.toml ] && command -v cargo-lambda >/dev/null 2>&1; then
    if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
        say "building the deployment artifact (cargo lambda build --arm64)"
        "${NICE[@]}" "$CARGO" lambda build --release --arm64 --locked --features vendored-openssl \
            --bin wishlist-migrator-lambda || say "cargo lambda build failed: the zip size is taken from the host build"
    fi
    # cargo-lambda builds into cargo's target directory (CargoLambda.toml names no lambda_dir).
    BUILT="$CARGO_TARGET_DIR/lambda/wishlist-migrator-lambda/bootstrap"
    [ -f "$BUILT" ] && ARTIFACT="$BUILT"
fi

# --- PostgreSQL -------------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/wishlist-bench.XXXXXX")
# Its own directory: local-pg.sh hands it to the postgres user, who cannot enter WORK.
PGDIR=$(mktemp -d "${TMPDIR:-/tmp}/wishlist-bench-pg.XXXXXX")
cleanup() {
    scripts/local-pg.sh stop "$PGDIR" >/dev/null 2>&1 || true
    rm -rf "$PGDIR" "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"${NICE[@]}" scripts/local-pg.sh start "$PGDIR"
# Room for the 5M-row table, no checkpoints in the middle of a load, and a log prefix that
# lets bench.py attribute logged statements to a database and an application.
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$(scripts/local-pg.sh url "$PGDIR")" <<'SQL'
ALTER SYSTEM SET shared_buffers = '2GB';
ALTER SYSTEM SET max_wal_size = '4GB';
ALTER SYSTEM SET log_line_prefix = '%m [%p] db=%d app=%a ';
SQL
scripts/local-pg.sh stop "$PGDIR"
"${NICE[@]}" scripts/local-pg.sh start "$PGDIR"

if [ -n "$QUICK" ]; then
    OUT_MD="$WORK/BENCHMARKS.md"
    OUT_PNG="$WORK/latency.png"
else
    OUT_MD="$ROOT/BENCHMARKS.md"
    OUT_PNG="$ROOT/bench/latency.png"
fi

args=(--pg-dir "$PGDIR" --pg-bin "$PG_BIN" --cli "$CLI" --work "$WORK" --out-md "$OUT_MD" --out-png "$OUT_PNG")
[ -n "$SQLX" ] && args+=(--sqlx "$SQLX")
[ -n "$LAMBDA" ] && args+=(--lambda-bin "$LAMBDA")
[ -n "$LAMBDA300" ] && args+=(--lambda300-bin "$LAMBDA300")
[ -n "$ARTIFACT" ] && args+=(--lambda-artifact "$ARTIFACT")
[ -n "$LAMBDA_BROKEN" ] && args+=(--lambda-broken "$LAMBDA_BROKEN")
[ -n "$QUICK" ] && args+=(--quick)
[ -n "${BENCH_ONLY:-}" ] && args+=(--only "$BENCH_ONLY")

status=0
"${NICE[@]}" "$PY" bench/bench.py "${args[@]}" || status=$?
if [ -z "$QUICK" ] && [ "$status" -eq 0 ]; then
    say "wrote BENCHMARKS.md and bench/latency.png"
fi
exit "$status"
