#!/usr/bin/env bash
# Installs what the build and the tests need beyond the Rust toolchain:
# a PostgreSQL server (tests start their own throwaway clusters), Node for the
# drizzle side, and a Python venv with moto, cfn-lint, cargo-lambda and zig.
# Safe to run repeatedly: every step checks first, so a ready machine costs
# well under a second.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf 'bootstrap: %s\n' "$*"; }

IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1

# Packages we would install if we could; reported together at the end when not root.
MISSING_APT=()

APT_UPDATED=0
apt_install() {
    if [ "$IS_ROOT" -ne 1 ]; then
        MISSING_APT+=("$@")
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    if [ "$APT_UPDATED" -eq 0 ]; then
        say "apt-get update"
        apt-get update -qq
        APT_UPDATED=1
    fi
    say "apt-get install $*"
    # confold: keep a config file we prepared ourselves (see createcluster.conf below).
    apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confold "$@" >/dev/null
}

have_initdb() {
    if [ -n "${PG_BIN:-}" ] && [ -x "$PG_BIN/initdb" ]; then return 0; fi
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && return 0
    command -v initdb >/dev/null 2>&1
}

# --- PostgreSQL server ------------------------------------------------------
if have_initdb; then
    say "postgresql: present"
else
    # Tests and scripts/local-pg.sh run their own clusters; Debian's default
    # "main" cluster would only take a port and memory, so stop the package
    # from creating (and hence starting) it.
    if [ "$IS_ROOT" -eq 1 ]; then
        apt_install postgresql-common
        if [ -f /etc/postgresql-common/createcluster.conf ]; then
            sed -ri 's/^#?\s*create_main_cluster\s*=.*/create_main_cluster = false/' \
                /etc/postgresql-common/createcluster.conf
        fi
    fi
    apt_install postgresql
fi

# --- libclang and the arm64 C headers -----------------------------------------
# The pg_query crate (the lint gate's SQL parser, libpg_query) generates its bindings with
# bindgen, which loads libclang; the arm64 Lambda cross build also needs the target's libc
# headers (.cargo/config.toml points bindgen at them).
if compgen -G '/usr/lib/llvm-*/lib/libclang.so*' >/dev/null; then
    say "libclang: present"
else
    apt_install libclang-dev
fi
if [ -f /usr/aarch64-linux-gnu/include/stdio.h ]; then
    say "arm64 libc headers: present"
else
    apt_install libc6-dev-arm64-cross
fi

# --- openssl CLI ------------------------------------------------------------
# tests/it/harness/tls.rs makes the test CAs and server certificates with it at test time,
# and minimal Debian images do not ship it.
if command -v openssl >/dev/null 2>&1; then
    say "openssl: present"
else
    apt_install openssl
fi

# --- PgBouncer ----------------------------------------------------------------
# tests/it/pooler.rs runs the CLI through a real PgBouncer in session and transaction mode
# (tests/it/harness/pgbouncer.rs starts it; Debian installs it under /usr/sbin).
if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then
    say "pgbouncer: present"
else
    apt_install pgbouncer
fi

# --- Chromium ---------------------------------------------------------------
# tests/it/envs.rs renders the envs page in a real headless browser (Debian's chromium).
if command -v chromium >/dev/null 2>&1; then
    say "chromium: present"
else
    apt_install chromium
fi

# --- Node / npm -------------------------------------------------------------
if [ -f package.json ]; then
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        apt_install nodejs npm
    fi
    if command -v npm >/dev/null 2>&1; then
        # The root package.json holds drizzle 0.x; tests/peer/drizzle1 holds drizzle 1.0 (its
        # own lockfile: both lines cannot share one node_modules). npm writes
        # node_modules/.package-lock.json on every install, so it is a reliable "installed at" stamp.
        for dir in . tests/peer/drizzle1; do
            if [ ! -f "$dir/package-lock.json" ]; then
                say "$dir/package-lock.json is missing: run 'npm install' there and commit the lock file" >&2
                exit 1
            fi
            if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
                say "npm ci ($dir)"
                (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
            else
                say "node_modules ($dir): up to date"
            fi
        done
    fi
else
    say "no package.json yet: skipping npm"
fi

# --- Python venv ------------------------------------------------------------
VENV="$ROOT/.venv"
STAMP="$VENV/.requirements-dev.stamp"
if ! command -v python3 >/dev/null 2>&1; then
    apt_install python3 python3-venv
elif ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    # Debian splits venv/ensurepip out of the python3 package.
    apt_install python3-venv
fi

if command -v python3 >/dev/null 2>&1 && python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    # A venv whose interpreter vanished (python upgraded or moved) must be rebuilt.
    if [ -d "$VENV" ] && ! "$VENV/bin/python" -c '' >/dev/null 2>&1; then
        if [ ! -w "$VENV" ]; then
            # Probably another user's venv: not ours to delete.
            say ".venv is unusable and not writable by $(id -un); remove it and re-run" >&2
            exit 1
        fi
        say "recreating broken .venv"
        rm -rf "$VENV"
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating .venv"
        python3 -m venv "$VENV"
        rm -f "$STAMP"
    fi
    if [ ! -f "$STAMP" ] || [ requirements-dev.txt -nt "$STAMP" ]; then
        say "pip install -r requirements-dev.txt"
        "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r requirements-dev.txt
        touch "$STAMP"
    else
        say ".venv: up to date"
    fi
fi

# --- Lambda cross build -----------------------------------------------------
# make test builds the arm64 Lambda artifact (cargo lambda, zig from .venv).
# rustup installs only the host's standard library by default, and the
# vendored OpenSSL build runs OpenSSL's Configure (perl with IPC::Cmd) and make.
LAMBDA_TARGET=aarch64-unknown-linux-gnu
if command -v rustup >/dev/null 2>&1; then
    if rustup target list --installed 2>/dev/null | grep -qx "$LAMBDA_TARGET"; then
        say "rust target $LAMBDA_TARGET: present"
    else
        say "rustup target add $LAMBDA_TARGET"
        rustup target add "$LAMBDA_TARGET"
    fi
else
    say "no rustup: install the $LAMBDA_TARGET standard library for the Lambda build yourself" >&2
fi
if ! perl -MIPC::Cmd -MFindBin -e 1 >/dev/null 2>&1; then
    apt_install perl
fi
if ! command -v make >/dev/null 2>&1; then
    apt_install make
fi

# --- Crates ------------------------------------------------------------------
# Every crate of Cargo.lock for every platform, not just what this host's build needs:
# `cargo metadata` (scripts/check-iam.py) and the arm64 build read crates a host build never
# downloads. A no-op when all are present.
if command -v cargo >/dev/null 2>&1; then
    say "cargo fetch --locked"
    cargo fetch --locked --quiet
fi

if [ "${#MISSING_APT[@]}" -gt 0 ]; then
    say "not root, so nothing was installed system-wide. Please run:" >&2
    say "  sudo apt-get install -y ${MISSING_APT[*]}" >&2
    say "then re-run scripts/bootstrap.sh" >&2
    exit 1
fi
say "done"
