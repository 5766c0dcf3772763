#!/usr/bin/env node
// Benchmark client on the pinned `pg` driver, the one the wishlist application (drizzle-orm's
// node-postgres adapter) talks through, so measured latencies include the same driver and
// protocol path: parameterised queries as unnamed extended-protocol statements.
//
//   node bench/pgclient.mjs latency <spec.json> <out.json>
//       spec: {url, warmup, iterations, queries: [{name, sql, params: [[...], ...], url?}]}
//       Runs the queries round-robin (A/B/C/... interleaved, so machine noise hits every
//       query alike), cycling through each query's parameter sets; writes
//       {name: [[ms, paramIndex], ...]}.
//
//   node bench/pgclient.mjs writer <spec.json> <out.json>
//       spec: {url, rows, pauseMs, pairs?}
//       Paced application writes (`pairs` INSERT loops and as many UPDATE loops, default 1,
//       each on its own connection) until SIGTERM; then writes
//       {ops: [[startMs, latencyMs, kind, sqlstate|null]], epochStartMs} (startMs counts from
//       epochStartMs, a wall-clock time).
//       Prints "ready" once every loop has completed an operation.
import crypto from 'node:crypto';
import fs from 'node:fs';
import process from 'node:process';
import pg from 'pg';

const [mode, specPath, outPath] = process.argv.slice(2);
if (!mode || !specPath || !outPath) {
  process.stderr.write('usage: pgclient.mjs latency|writer SPEC OUT\n');
  process.exit(2);
}
const spec = JSON.parse(fs.readFileSync(specPath, 'utf8'));

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

async function connect(url) {
  const client = new pg.Client({ connectionString: url, application_name: 'wishlist-bench' });
  // A dropped connection must fail the run loudly, not crash node with an unhandled event.
  client.on('error', (e) => process.stderr.write(`pgclient: connection error: ${e.message}\n`));
  await client.connect();
  return client;
}

async function latency() {
  // One connection per database: A/B comparisons put A and B in two databases and interleave.
  const clients = new Map();
  for (const q of spec.queries) {
    const url = q.url || spec.url;
    if (!clients.has(url)) clients.set(url, await connect(url));
  }
  const out = {};
  for (const q of spec.queries) out[q.name] = [];
  // Every parameter set once before timing, so no sample pays for first touching its rows.
  for (const q of spec.queries) {
    for (const p of q.params) await clients.get(q.url || spec.url).query(q.sql, p);
  }
  const total = spec.warmup + spec.iterations;
  for (let i = 0; i < total; i += 1) {
    for (const q of spec.queries) {
      const p = i % q.params.length;
      const t0 = nowMs();
      const res = await clients.get(q.url || spec.url).query(q.sql, q.params[p]);
      const ms = nowMs() - t0;
      // An empty page would make a query look fast for the wrong reason.
      if (q.minRows && res.rowCount < q.minRows) {
        throw new Error(`${q.name}: ${res.rowCount} rows for params #${p}, expected >= ${q.minRows}`);
      }
      if (i >= spec.warmup) out[q.name].push([Number(ms.toFixed(4)), p]);
    }
  }
  for (const c of clients.values()) await c.end();
  fs.writeFileSync(outPath, JSON.stringify(out));
}

// The loader derives every item id from its row number, so the updater can address existing
// rows by primary key without reading them first.
function itemId(n) {
  const h = crypto.createHash('md5').update(`w${n}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

async function writer() {
  const stores = ['LEGO', 'BrickLink', 'Barweer', 'Cata', 'Other'];
  const pairs = spec.pairs || 1;
  const started = nowMs();
  // The caller's window is on the wall clock: where startMs 0 is on it.
  const epochStartMs = Date.now();
  const ops = [];
  let stop = false;
  let ready = 0;
  process.on('SIGTERM', () => {
    stop = true;
  });
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  async function loop(kind, op) {
    const client = await connect(spec.url);
    let n = 0;
    while (!stop) {
      const t0 = nowMs();
      let code = null;
      try {
        await op(client, n);
      } catch (e) {
        code = e.code || 'ERR';
        if (!/^[0-9A-Z]{5}$/.test(code)) process.stderr.write(`pgclient: ${kind}: ${e.message}\n`);
      }
      ops.push([Number((t0 - started).toFixed(3)), Number((nowMs() - t0).toFixed(3)), kind, code]);
      n += 1;
      if (n === 1 && (ready += 1) === 2 * pairs) process.stdout.write('ready\n');
      await sleep(spec.pauseMs);
    }
    await client.end();
  }

  const user = (n) => crypto.createHash('md5').update(`writer${n % 50}`).digest('hex');
  // Each pair writes its own stretch of sort orders and rows, as separate users would.
  const loops = [];
  for (let p = 0; p < pairs; p += 1) {
    loops.push(
      loop('insert', (c, n) =>
        c.query(
          'INSERT INTO wishlist_items (user_id, title, store, currency, priority, sort_order) VALUES ($1, $2, $3, $4, $5, $6)',
          [user(n + p), `Writer set ${n}`, stores[n % stores.length], 'USD', n % 6, 10_000_000 + p * 1_000_000 + n],
        ),
      ),
      loop('update', (c, n) =>
        c.query('UPDATE wishlist_items SET priority = $1, updated_at = now() WHERE id = $2', [
          n % 6,
          itemId(1 + ((n * 7919 + p * 104729) % spec.rows)),
        ]),
      ),
    );
  }
  await Promise.all(loops);
  fs.writeFileSync(outPath, JSON.stringify({ ops, epochStartMs }));
}

try {
  if (mode === 'latency') await latency();
  else if (mode === 'writer') await writer();
  else throw new Error(`unknown mode ${mode}`);
} catch (e) {
  process.stderr.write(`pgclient: ${e.message}\n`);
  process.exit(1);
}
