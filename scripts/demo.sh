#!/usr/bin/env bash
# Shows the CLI end to end against a throwaway local PostgreSQL: apply the
# repo's migrations, then report their status. Expects the CLI to be built
# already (make demo does both).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CLI="${CARGO_TARGET_DIR:-$HOME/.cache/wishlist-migrator/target}/debug/wishlist-migrate"
[ -x "$CLI" ] || { echo "demo: $CLI not built (run make demo)" >&2; exit 1; }

PGDIR=$(mktemp -d "${TMPDIR:-/tmp}/wishlist-demo-pg.XXXXXX")
cleanup() {
    scripts/local-pg.sh stop "$PGDIR" || true
    rm -rf "$PGDIR"
}
trap cleanup EXIT

scripts/local-pg.sh start "$PGDIR"
DATABASE_URL=$(scripts/local-pg.sh url "$PGDIR")
export DATABASE_URL

echo "== wishlist-migrate migrate"
"$CLI" migrate
echo "== wishlist-migrate status"
"$CLI" status
