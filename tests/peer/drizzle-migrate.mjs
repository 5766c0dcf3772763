#!/usr/bin/env node
// Reference peer: applies a migrations folder with drizzle-orm's own migrate(),
// so tests can compare wishlist-migrator's ledger and behaviour against the real thing.
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
  const head = code ? `drizzle-migrate: error ${code}: ` : 'drizzle-migrate: error: ';
  return head + lines.join('\n  caused by: ');
}

async function main() {
  const url = process.env.DATABASE_URL;
  if (!url) {
    process.stderr.write('drizzle-migrate: DATABASE_URL is required\n');
    return 2;
  }
  const migrationsFolder = path.resolve(process.env.MIGRATIONS_DIR || 'migrations');
  const migrationsSchema = process.env.MIGRATIONS_SCHEMA || 'drizzle';
  const migrationsTable = process.env.MIGRATIONS_TABLE || '__drizzle_migrations';

  // One connection: migrate() runs everything in one transaction anyway, and a
  // single backend keeps session state (and errors) unambiguous.
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  // An idle client that loses its connection emits 'error' on the pool; without
  // a listener node would crash with an unhandled event instead of our message.
  pool.on('error', () => {});
  try {
    const db = drizzle({ client: pool });
    await migrate(db, { migrationsFolder, migrationsSchema, migrationsTable });
    process.stdout.write(`drizzle-migrate: ok (${process.env.MIGRATIONS_DIR || 'migrations'})\n`);
    return 0;
  } catch (err) {
    process.stderr.write(describe(err) + '\n');
    return 1;
  } finally {
    await pool.end().catch(() => {});
  }
}

process.exitCode = await main();
