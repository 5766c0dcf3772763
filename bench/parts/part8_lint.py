"""Part 8: the lint gate. Its speed on long histories, side by side with squawk on the same files,
and how its estimate of blocked writes compares with what a migration really takes on a
populated table (which is where the throughputs in src/lint/live.rs come from)."""

import json
import os
import shutil
import statistics

import common
import history


def lint_times(ctx, folder, rounds):
    times, report = [], None
    for _ in range(rounds):
        dt, r = ctx.run([ctx.cli, "--json", "--migrations", folder, "lint", "--offline"], check=False, what="lint")
        times.append(dt)
        if r.returncode not in (0, 3):
            raise common.BenchError(f"lint on {folder} exited {r.returncode}: {r.stderr[:400]}")
        report = json.loads(r.stdout)
    return times, report


def squawk_times(ctx, folder, rounds):
    squawk = shutil.which("squawk") or os.path.join(common.ROOT, ".venv", "bin", "squawk")
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".sql"))
    times = []
    for _ in range(rounds):
        dt, _ = ctx.run([squawk, "--reporter", "json", *files], check=False, what="squawk")
        times.append(dt)
    return times


def calibration(ctx):
    """0001 (WISH-2007 as written) pending on a populated 0000 table: the lint's estimate of how
    long writes wait, against the migration's measured wall time (all of it holds ACCESS
    EXCLUSIVE on wishlist_items, so the wall time is the blocked time)."""
    rows = 50_000 if ctx.quick else 1_000_000
    db = "p7_calibrate"
    ctx.create_db(db)
    ctx.run(*ctx.ours(db, "migrate", "--to", "0000_create_wishlist_items"), what="wishlist-migrate --to 0000")
    common.load_rows(ctx, db, common.Shape(ctx.quick), 0, rows, enum_casts=False, seed=0.7)
    ctx.psql("ANALYZE wishlist_items;", db)
    cmd, env = ctx.ours(db, "lint", json_out=True)
    _, r = ctx.run(cmd, env, check=False, what="lint --database-url")
    report = json.loads(r.stdout)
    findings = report.get("findings", [])
    estimated_ms = sum(f.get("blocksWritesMs", 0) for f in findings)
    size = int(ctx.psql("select pg_total_relation_size('wishlist_items')", db))
    measured_s, _ = ctx.run(*ctx.ours(db, "migrate", "--no-lint-gate"), what="wishlist-migrate (0001, gate off)")
    ctx.drop_db(db)
    return {
        "rows": rows,
        "bytes": size,
        "status": report.get("status"),
        "findings": [(f["rule"], f["level"], f.get("blocksWritesMs")) for f in findings],
        "estimated_ms": estimated_ms,
        "measured_ms": measured_s * 1000,
    }


def check_times(ctx, folder, new, rounds):
    """`check --base` as a pull request's CI runs it: the base is the history without its last
    `new` migrations (a folder, so git's own time is not measured)."""
    base = folder.rstrip("/") + f"-base-{new}"
    shutil.rmtree(base, ignore_errors=True)
    shutil.copytree(folder, base)
    journal_path = os.path.join(base, "meta", "_journal.json")
    with open(journal_path) as f:
        journal = json.load(f)
    for entry in journal["entries"][-new:]:
        os.remove(os.path.join(base, entry["tag"] + ".sql"))
    journal["entries"] = journal["entries"][:-new]
    with open(journal_path, "w") as f:
        json.dump(journal, f)
    times, report = [], None
    for _ in range(rounds):
        dt, r = ctx.run([ctx.cli, "--migrations", folder, "check", "--base", base, "--format", "json"], check=False, what="check")
        times.append(dt)
        if r.returncode not in (0, 3):
            raise common.BenchError(f"check on {folder} exited {r.returncode}: {r.stderr[:400]}")
        report = json.loads(r.stdout)
    return times, report


def run(ctx):
    rounds = 3 if ctx.quick else 15
    sizes = [200, 300]
    rows = []
    budget_ms = 200
    ok = True
    for count in sizes:
        hist = history.generate(os.path.join(ctx.work, f"lint-history-{count}"), count)
        folder = hist["drizzle_dir"]
        ours, report = lint_times(ctx, folder, rounds)
        theirs = squawk_times(ctx, folder, rounds)
        med = statistics.median(ours) * 1000
        if count == 200:
            ok = med <= budget_ms
        rows.append([
            f"{count} migrations ({hist['statements']} statements)",
            common.fmt_ms(med),
            common.fmt_ms(min(ours) * 1000),
            common.fmt_ms(statistics.median(theirs) * 1000),
            f"{statistics.median(ours) / statistics.median(theirs):.2f}×",
            str(len(report.get("findings", []))),
        ])
    check_new = 5
    check_ms, check_report = check_times(ctx, folder, check_new, rounds)
    check_med = statistics.median(check_ms) * 1000
    check_budget_ms = 100
    check_ok = check_med <= check_budget_ms
    cal = calibration(ctx)
    ratio = cal["estimated_ms"] / cal["measured_ms"] if cal["measured_ms"] else 0
    ctx.headline.append(("8. lint 200 migrations", f"{rows[0][1]} ms", f"≤ {budget_ms} ms", common.verdict(ok)))
    ctx.headline.append((f"8. check {sizes[-1]} migrations ({check_new} new)", f"{common.fmt_ms(check_med)} ms", f"≤ {check_budget_ms} ms", common.verdict(check_ok)))
    ctx.headline.append((f"8. blocked-writes estimate on {common.fmt_rows(cal['rows'])} rows", f"{ratio:.2f}× measured", "order of magnitude", "—"))
    findings = "; ".join(f"`{rule}` {level}" + (f" ~{ms} ms" if ms is not None else "") for rule, level, ms in cal["findings"])
    md = [
        "## 8. lint",
        "",
        f"Wall time of `wishlist-migrate --json lint --offline` (process start to exit, {rounds} runs each) on the generated "
        "histories of part 2, and of squawk (`squawk --reporter json`, every file in one process) on the same files.",
        "",
        common.md_table(["history", "lint median ms", "lint min ms", "squawk median ms", "lint ÷ squawk", "findings"], rows),
        "",
        f"Budget: {budget_ms} ms for 200 migrations: {common.verdict(ok)}.",
        "",
        f"**check.** `wishlist-migrate check --base <folder> --format json` on the {sizes[-1]}-migration history, the base "
        f"being the same history without its last {check_new} migrations (a pull request adding {check_new}): median "
        f"{common.fmt_ms(check_med)} ms, min {common.fmt_ms(min(check_ms) * 1000)} ms ({rounds} runs; the traps of every file "
        f"and journal entry, and the lint of the {check_new} new ones, which reads the whole history for what it built), "
        f"status `{check_report.get('status')}`. Budget: {check_budget_ms} ms: {common.verdict(check_ok)}.",
        "",
        f"**Estimate against measurement.** `wishlist_items` at 0000 with {common.fmt_rows(cal['rows'])} rows "
        f"({cal['bytes'] / 1048576:.0f} MiB with indexes), analyzed; `lint` with the database and 0001 (WISH-2007 as written) "
        f"pending: status `{cal['status']}`, findings {findings}. Their estimates add up to {cal['estimated_ms']:,.0f} ms of "
        f"blocked writes; applying 0001 (`migrate --no-lint-gate`, every statement under ACCESS EXCLUSIVE in one "
        f"transaction) took {cal['measured_ms']:,.0f} ms: the estimate is {ratio:.2f}× the measurement. The throughputs in "
        "`src/lint/live.rs` come from this measurement on this machine; an instance under load is slower.",
    ]
    return "\n".join(md)
