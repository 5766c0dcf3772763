"""Part 5: migration cost on a populated table: WISH-2007's 0001 as written and the hand-written
online alternative (bench/proposals/wish_2007_online/), each under a concurrent writer."""

import json
import os
import shutil
import signal
import subprocess
import time

from common import BenchError, ROOT, Shape, fmt_ms, fmt_rows, load_rows, log, md_table, pct


def online_folder(ctx):
    """0000 from the project plus the online (expand / backfill / contract) replacement of 0001."""
    src = os.path.join(ROOT, "bench", "proposals", "wish_2007_online")
    dst = os.path.join(ctx.work, "wish-2007-online")
    shutil.rmtree(dst, ignore_errors=True)
    os.makedirs(os.path.join(dst, "meta"))
    with open(os.path.join(ROOT, "migrations", "meta", "_journal.json")) as f:
        first = json.load(f)["entries"][0]
    shutil.copyfile(os.path.join(ROOT, "migrations", first["tag"] + ".sql"), os.path.join(dst, first["tag"] + ".sql"))
    entries = [first]
    for i, name in enumerate(sorted(n for n in os.listdir(src) if n.endswith(".sql"))):
        tag = name[:-4]
        shutil.copyfile(os.path.join(src, name), os.path.join(dst, name))
        entries.append({"idx": i + 1, "version": "7", "when": first["when"] + 60_000 * (i + 1), "tag": tag, "breakpoints": True})
    with open(os.path.join(dst, "meta", "_journal.json"), "w") as f:
        json.dump({"version": "7", "dialect": "postgresql", "entries": entries}, f, indent=2)
    return dst, [e["tag"] for e in entries[1:]]


def with_writer(ctx, db, rows, run, baseline_s):
    """Runs `run()` while paced application writes go on; returns (run's result, writer stats)."""
    spec_path = os.path.join(ctx.work, f"writer-{db}.json")
    out_path = os.path.join(ctx.work, f"writer-{db}-out.json")
    with open(spec_path, "w") as f:
        json.dump({"url": ctx.url(db), "rows": rows, "pauseMs": 5}, f)
    proc = subprocess.Popen(
        ["node", os.path.join(ROOT, "bench", "pgclient.mjs"), "writer", spec_path, out_path],
        cwd=ROOT, env=ctx.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    started = time.perf_counter()
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise BenchError(f"writer did not start: {proc.stderr.read()[:500]}")
    time.sleep(baseline_s)
    t0 = (time.perf_counter() - started) * 1000
    try:
        result = run()
    finally:
        t1 = (time.perf_counter() - started) * 1000
        time.sleep(min(2.0, baseline_s))
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise BenchError("writer did not stop")
    if proc.returncode != 0:
        raise BenchError(f"writer failed: {err[:500]}")
    with open(out_path) as f:
        ops = json.load(f)["ops"]
    # The writer's clock starts a little before ours; ops are matched to the window by overlap.
    skew = ops[0][0] if ops else 0
    during = [o for o in ops if o[0] - skew < t1 and o[0] - skew + o[1] > t0]
    before = [o for o in ops if o[0] - skew + o[1] <= t0]
    lat = lambda xs: [o[1] for o in xs]
    errors = {}
    for o in during:
        if o[3]:
            errors[o[3]] = errors.get(o[3], 0) + 1
    window_s = (t1 - t0) / 1000
    return result, {
        "window_s": window_s,
        "ops": len(during),
        "ops_per_s": len(during) / window_s if window_s else 0,
        "base_ops_per_s": len(before) / (t0 / 1000) if t0 else 0,
        "p50": pct(lat(during), 50),
        "p99": pct(lat(during), 99),
        "max": max(lat(during)) if during else float("nan"),
        "base_p99": pct(lat(before), 99),
        "base_max": max(lat(before)) if before else float("nan"),
        "errors": errors,
    }


def schema_fingerprint(ctx, db):
    return ctx.psql(
        """
        select json_build_object(
          'columns', (select json_agg(json_build_array(column_name, udt_name, column_default, is_nullable) order by column_name)
                      from information_schema.columns where table_name = 'wishlist_items'),
          'indexes', (select json_agg(json_build_array(indexname, indexdef) order by indexname)
                      from pg_indexes where tablename = 'wishlist_items'),
          'constraints', (select json_agg(json_build_array(conname, pg_get_constraintdef(oid)) order by conname)
                          from pg_constraint where conrelid = 'wishlist_items'::regclass),
          'triggers', (select count(*) from pg_trigger where tgrelid = 'wishlist_items'::regclass and not tgisinternal))
        """,
        db,
    )


def run(ctx):
    rows = 50_000 if ctx.quick else 1_000_000
    baseline_s = 1.0 if ctx.quick else 3.0
    shape = Shape(ctx.quick)
    db_a, db_b = "p5_rewrite", "p5_online"
    ctx.create_db(db_a)
    ctx.run(*ctx.ours(db_a, "migrate", "--to", "0000_create_wishlist_items"), what="wishlist-migrate --to 0000")
    log(f"part 5: loading {fmt_rows(rows)} rows in the 0000 (text) schema")
    load_rows(ctx, db_a, shape, 0, rows, enum_casts=False, seed=0.5)
    ctx.psql("CHECKPOINT;")
    ctx.drop_db(db_b)
    ctx.psql(f'CREATE DATABASE "{db_b}" TEMPLATE "{db_a}" STRATEGY FILE_COPY;')
    size_before = int(ctx.psql("select pg_total_relation_size('wishlist_items')", db_a))

    def apply(db, folder=None):
        def go():
            t0 = time.perf_counter()
            # 0001 as written is what the lint gate refuses on a large table (part 8): measured
            # with the gate off, to show what it would have cost.
            gate = [] if folder else ["--no-lint-gate"]
            _, r = ctx.run(*ctx.ours(db, "migrate", *gate, migrations=folder, json_out=True), what=f"wishlist-migrate on {db}")
            return time.perf_counter() - t0, json.loads(r.stdout)
        return go

    log("part 5: 0001 as written (table rewrite) under a concurrent writer")
    (dt_a, rep_a), w_a = with_writer(ctx, db_a, rows, apply(db_a), baseline_s)
    folder, tags = online_folder(ctx)
    log("part 5: the online alternative under a concurrent writer")
    (dt_b, rep_b), w_b = with_writer(ctx, db_b, rows, apply(db_b, folder), baseline_s)
    for rep, db in ((rep_a, db_a), (rep_b, db_b)):
        if rep["status"] != "applied":
            raise BenchError(f"{db}: {json.dumps(rep)[:400]}")
    fp_a, fp_b = schema_fingerprint(ctx, db_a), schema_fingerprint(ctx, db_b)
    if fp_a != fp_b:
        raise BenchError(f"the online path does not end in 0001's schema:\n{fp_a}\n{fp_b}")
    missing = ctx.psql("select count(*) from wishlist_items where store is null", db_b)
    if missing != "0":
        raise BenchError(f"online path left {missing} rows without a store")
    size_a = int(ctx.psql("select pg_total_relation_size('wishlist_items')", db_a))
    size_b = int(ctx.psql("select pg_total_relation_size('wishlist_items')", db_b))
    steps_b = {a["tag"]: a["durationMs"] for a in rep_b["applied"]}
    seg_b = rep_b.get("segments") or []

    def wrow(name, dt, w):
        errs = ", ".join(f"{k}×{v}" for k, v in w["errors"].items()) or "none"
        return [name, f"{dt:.1f}", fmt_ms(w["max"]), fmt_ms(w["p99"]), fmt_ms(w["p50"]),
                f"{w['ops_per_s']:.0f} (baseline {w['base_ops_per_s']:.0f})", fmt_ms(w["base_p99"]), errs]

    md = [
        f"## 5. Migration cost on a populated table (WISH-2007 / 0001 on {fmt_rows(rows)} rows)",
        "",
        f"`wishlist_items` at migration 0000 (store and currency as text) with {fmt_rows(rows)} rows; a paced writer "
        "(`bench/pgclient.mjs writer`: one connection inserting, one updating random rows by primary key, 5 ms apart, "
        f"as the application would) runs {baseline_s:.0f} s before, during, and 2 s after each migration. Writer latency "
        "is per statement; the longest one is how long writes were blocked.",
        "",
        md_table(
            ["path", "migration wall s", "writer max ms (= writes blocked)", "writer p99 ms", "writer p50 ms", "writes/s during", "baseline p99 ms", "writer errors"],
            [wrow("0001 as written (one transaction, ALTER COLUMN … TYPE rewrites the table)", dt_a, w_a),
             wrow("online: expand, backfill in batches, CREATE INDEX CONCURRENTLY, validate, swap", dt_b, w_b)],
        ),
        "",
        "```sh",
        "wishlist-migrate --json migrate                                  # 0001 as written, embedded",
        "wishlist-migrate --json --migrations <0000 + bench/proposals/wish_2007_online/*.sql> migrate",
        "```",
        "",
        "Both end in the same schema (columns, types, defaults, nullability, indexes, constraints compared; the online "
        "path puts `store`/`currency` last in column order). Table + index size afterwards: "
        f"{size_before / 2**20:,.0f} MiB before, {size_a / 2**20:,.0f} MiB after the rewrite, {size_b / 2**20:,.0f} MiB after "
        "the online path (the backfill leaves one dead version per row until VACUUM).",
        "",
        "Online steps as wishlist-migrate ran them (" + f"{len(seg_b)} commit segments): " + "; ".join(
            f"`{t}` {steps_b.get(t, 0) / 1000:.1f} s" for t in tags) + ".",
    ]
    ctx.part5 = {"rewrite": (dt_a, w_a), "online": (dt_b, w_b)}
    ctx.drop_db(db_a)
    ctx.drop_db(db_b)
    ctx.headline.append((f"5. 0001 on {fmt_rows(rows)} rows: writes blocked", f"{fmt_ms(w_a['max'])} ms (migration {dt_a:.1f} s)", "— (measured)", "see part 5"))
    ctx.headline.append(("5. … online alternative: writes blocked", f"{fmt_ms(w_b['max'])} ms (migration {dt_b:.1f} s)", "—", "see part 5"))
    return "\n".join(md)
