#!/usr/bin/env node
// Reference peer for drizzle 1.0: applies a drizzle-kit 1.0 migrations folder (one folder per
// migration) with drizzle-orm 1.0's own migrate(), from this folder's node_modules
// (drizzle-orm 1.0.0-rc.5, pinned in ./package-lock.json; the 0.x peer is ../drizzle-migrate.mjs).
// Like the 0.x peer: no lock, one transaction, and on a 0.x ledger drizzle-orm 1.0 first
// upgrades it (adds name and applied_at, fills the names).
//
// Env: DATABASE_URL (required), MIGRATIONS_DIR (default "migrations"),
//      MIGRATIONS_SCHEMA (default "drizzle"), MIGRATIONS_TABLE (default "__drizzle_migrations").
// Exit 0 on success; otherwise 1 with the error (and its SQLSTATE, if any) on stderr.
import path from 'node:path';
import process from 'node:process';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';

// drizzle-orm wraps driver errors ("Failed query: ..."), so the SQLSTATE sits
// somewhere down the cause chain; callers assert on it, not on message text.
function describe(err) {
  const lines = [];
  let code;
  for (let e = err, depth = 0; e && depth < 10; e = e.cause, depth += 1) {
    if (!code && typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) code = e.code;
    lines.push(e instanceof Error ? e.message : String(e));
  }
  const head = code ? `drizzle1-migrate: error ${code}: ` : 'drizzle1-migrate: error: ';
  return head + lines.join('\n  caused by: ');
}

async function main() {
  const url = process.env.DATABASE_URL;
  if (!url) {
    process.stderr.write('drizzle1-migrate: DATABASE_URL is required\n');
    return 2;
  }
  const migrationsFolder = path.resolve(process.env.MIGRATIONS_DIR || 'migrations');
  const migrationsSchema = process.env.MIGRATIONS_SCHEMA || 'drizzle';
  const migrationsTable = process.env.MIGRATIONS_TABLE || '__drizzle_migrations';

  // One connection: migrate() runs the pending migrations in one transaction anyway, and a
  // single backend keeps session state (and errors) unambiguous.
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  // An idle client that loses its connection emits 'error' on the pool; without
  // a listener node would crash with an unhandled event instead of our message.
  pool.on('error', () => {});
  try {
    const db = drizzle({ client: pool });
    await migrate(db, { migrationsFolder, migrationsSchema, migrationsTable });
    process.stdout.write(`drizzle1-migrate: ok (${process.env.MIGRATIONS_DIR || 'migrations'})\n`);
    return 0;
  } catch (err) {
    process.stderr.write(describe(err) + '\n');
    return 1;
  } finally {
    await pool.end().catch(() => {});
  }
}

process.exitCode = await main();
