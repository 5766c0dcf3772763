"""Generates a long, realistic drizzle-kit migration history for the "apply a long history"
benchmark, plus the same history in sqlx's folder format and as one SQL script for psql.

The SQL follows drizzle-kit 0.31's output conventions (quoted identifiers, `USING btree`,
`"public"."type"` enum references, `;--> statement-breakpoint` separators, FKs added as
separate ALTER TABLE statements) so the tools under test parse what they see in real projects.

Enum values added with `ALTER TYPE ... ADD VALUE` are never used later in the generated
history: PostgreSQL refuses to use a new value in the transaction that added it (55P04), and
`psql --single-transaction` (the benchmark's floor) and drizzle-orm (one transaction for the
whole batch) would both fail. wishlist-migrator commits after each such migration instead, so
it can apply histories the other two cannot; the benchmark measures the common ground.
"""

import hashlib
import json
import os
import random

BREAKPOINT = "--> statement-breakpoint\n"

NOUNS = [
    "orders", "order_lines", "customers", "addresses", "products", "variants", "inventory",
    "shipments", "invoices", "payments", "refunds", "coupons", "carts", "cart_items", "reviews",
    "wishlists", "stores", "suppliers", "purchase_orders", "categories", "tags", "collections",
    "notifications", "sessions", "api_keys", "webhooks", "audit_events", "price_rules",
    "warehouses", "returns", "gift_cards", "subscriptions", "plans", "teams", "members",
    "invites", "attachments", "comments", "feature_flags", "exports",
]
ENUM_WORDS = [
    ["draft", "active", "archived"],
    ["pending", "paid", "failed", "refunded"],
    ["low", "normal", "high", "urgent"],
    ["email", "sms", "push"],
    ["small", "medium", "large"],
    ["open", "closed", "on_hold"],
]
EXTRA_COLUMNS = [
    ("notes", "text", None),
    ("external_ref", "varchar(64)", None),
    ("position", "integer", "0"),
    ("weight_grams", "integer", None),
    ("is_visible", "boolean", "true"),
    ("metadata", "jsonb", "'{}'::jsonb"),
    ("discount", "numeric(5, 2)", "'0'"),
    ("archived_at", "timestamp with time zone", None),
    ("locale", "varchar(16)", "'en-US'"),
    ("score", "double precision", None),
    ("labels", "text[]", "'{}'"),
    ("version", "integer", "1"),
]


def q(name):
    return f'"{name}"'


class Table:
    def __init__(self, name, enum):
        self.name = name
        self.enum = enum
        self.columns = ["id", "owner_id", "name", "status", "kind", "amount", "quantity", "attributes", "created_at", "updated_at"]
        # Columns an index, constraint or type conversion depends on; never dropped or renamed.
        self.pinned = {"id", "owner_id", "name", "status", "kind", "amount", "quantity", "created_at", "updated_at"}
        self.droppable = []
        self.indexes = []
        self.kind_converted = False
        self.has_code = False
        self.checks = 0
        self.extra = 0


class Generator:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.tables = []
        self.enums = {}  # name -> usable values (those created with the type)
        self.counter = 0

    def uniq(self):
        self.counter += 1
        return self.counter

    def new_enum(self, stmts, words=None):
        name = f"{self.rng.choice(['status', 'state', 'level', 'channel', 'size', 'phase'])}_{self.uniq()}"
        values = list(words or self.rng.choice(ENUM_WORDS))
        self.enums[name] = values
        literals = ", ".join(f"'{v}'" for v in values)
        stmts.append(f'CREATE TYPE "public".{q(name)} AS ENUM({literals});')
        return name

    def create_table(self):
        stmts = []
        enum = self.new_enum(stmts) if (not self.enums or self.rng.random() < 0.4) else self.rng.choice(sorted(self.enums))
        base = NOUNS[len(self.tables) % len(NOUNS)]
        name = f"{base}_{len(self.tables) // len(NOUNS) + 1}"
        t = Table(name, enum)
        default = self.enums[enum][0]
        stmts.append(
            f"CREATE TABLE {q(name)} (\n"
            f'\t"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,\n'
            f'\t"owner_id" text NOT NULL,\n'
            f'\t"name" text NOT NULL,\n'
            f'\t"status" "{enum}" DEFAULT \'{default}\' NOT NULL,\n'
            f'\t"kind" text,\n'
            f'\t"amount" numeric(12, 2),\n'
            f'\t"quantity" integer DEFAULT 0 NOT NULL,\n'
            f"\t\"attributes\" jsonb DEFAULT '{{}}'::jsonb,\n"
            f'\t"created_at" timestamp with time zone DEFAULT now() NOT NULL,\n'
            f'\t"updated_at" timestamp with time zone DEFAULT now() NOT NULL\n'
            f");\n"
        )
        if self.tables and self.rng.random() < 0.6:
            parent = self.rng.choice(self.tables)
            col = f"{parent.name}_id"
            stmts.append(f"ALTER TABLE {q(name)} ADD COLUMN {q(col)} uuid;")
            action = self.rng.choice(["cascade", "set null", "no action"])
            stmts.append(
                f'ALTER TABLE {q(name)} ADD CONSTRAINT "{name}_{col}_{parent.name}_id_fk" FOREIGN KEY ({q(col)}) '
                f'REFERENCES "public".{q(parent.name)}("id") ON DELETE {action} ON UPDATE no action;'
            )
            t.columns.append(col)
            t.pinned.add(col)
            idx = f"{name}_{col}_idx"
            stmts.append(f'CREATE INDEX {q(idx)} ON {q(name)} USING btree ({q(col)});')
            t.indexes.append(idx)
        idx = f"{name}_owner_created_idx"
        stmts.append(f'CREATE INDEX {q(idx)} ON {q(name)} USING btree ("owner_id","created_at" DESC NULLS LAST);')
        t.indexes.append(idx)
        self.tables.append(t)
        return f"create_{name}", stmts

    def add_columns(self):
        t = self.rng.choice(self.tables)
        stmts = []
        for _ in range(self.rng.randint(1, 3)):
            base, typ, default = self.rng.choice(EXTRA_COLUMNS)
            t.extra += 1
            col = f"{base}_{t.extra}"
            stmt = f"ALTER TABLE {q(t.name)} ADD COLUMN {q(col)} {typ}"
            if default is not None:
                stmt += f" DEFAULT {default}"
            stmts.append(stmt + ";")
            t.columns.append(col)
            t.droppable.append(col)
        return f"add_columns_{t.name}", stmts

    def add_index(self):
        t = self.rng.choice(self.tables)
        n = self.uniq()
        style = self.rng.random()
        if style < 0.4:
            idx = f"{t.name}_owner_status_{n}_idx"
            stmt = f'CREATE INDEX {q(idx)} ON {q(t.name)} USING btree ("owner_id","status");'
        elif style < 0.7:
            idx = f"{t.name}_active_{n}_idx"
            value = self.enums[t.enum][0]
            stmt = (
                f'CREATE INDEX {q(idx)} ON {q(t.name)} USING btree ("owner_id","updated_at") '
                f"WHERE \"{t.name}\".\"status\" = '{value}';"
            )
        elif style < 0.85:
            idx = f"{t.name}_name_lower_{n}_idx"
            stmt = f'CREATE INDEX {q(idx)} ON {q(t.name)} USING btree (lower("name"));'
        else:
            idx = f"{t.name}_attributes_{n}_idx"
            stmt = f'CREATE INDEX {q(idx)} ON {q(t.name)} USING gin ("attributes" jsonb_path_ops);'
        t.indexes.append(idx)
        return f"index_{t.name}", [stmt]

    def drop_index(self):
        candidates = [t for t in self.tables if len(t.indexes) > 1]
        if not candidates:
            return self.add_index()
        t = self.rng.choice(candidates)
        idx = t.indexes.pop(self.rng.randrange(1, len(t.indexes)))
        return f"drop_index_{t.name}", [f'DROP INDEX {q(idx)};']

    def add_check(self):
        t = self.rng.choice(self.tables)
        t.checks += 1
        name = f"{t.name}_quantity_check_{t.checks}"
        limit = self.rng.choice([1000, 10000, 100000])
        return f"check_{t.name}", [
            f'ALTER TABLE {q(t.name)} ADD CONSTRAINT {q(name)} CHECK ("{t.name}"."quantity" >= 0 AND "{t.name}"."quantity" <= {limit});'
        ]

    def add_unique(self):
        candidates = [t for t in self.tables if not t.has_code]
        if not candidates:
            return self.add_check()
        t = self.rng.choice(candidates)
        t.has_code = True
        t.columns.append("code")
        t.pinned.add("code")
        return f"unique_code_{t.name}", [
            f'ALTER TABLE {q(t.name)} ADD COLUMN "code" varchar(32);',
            f'ALTER TABLE {q(t.name)} ADD CONSTRAINT "{t.name}_code_unique" UNIQUE("code");',
        ]

    def add_enum_value(self):
        name = self.rng.choice(sorted(self.enums))
        value = f"added_{self.uniq()}"
        # Deliberately not appended to self.enums[name]: see the module docstring.
        return f"enum_{name}_add_value", [f"ALTER TYPE \"public\".{q(name)} ADD VALUE '{value}';"]

    def convert_kind(self):
        candidates = [t for t in self.tables if not t.kind_converted]
        if not candidates:
            return self.add_columns()
        t = self.rng.choice(candidates)
        t.kind_converted = True
        stmts = []
        enum = self.new_enum(stmts, words=["physical", "digital", "service"])
        stmts.append(
            f'ALTER TABLE {q(t.name)} ALTER COLUMN "kind" SET DATA TYPE "public".{q(enum)} USING "kind"::"public".{q(enum)};'
        )
        return f"kind_enum_{t.name}", stmts

    def alter_columns(self):
        t = self.rng.choice(self.tables)
        choice = self.rng.random()
        if choice < 0.35:
            stmts = [f'ALTER TABLE {q(t.name)} ALTER COLUMN "amount" SET DEFAULT \'0\';']
        elif choice < 0.6:
            stmts = [f'ALTER TABLE {q(t.name)} ALTER COLUMN "name" SET DATA TYPE varchar(500);']
        elif choice < 0.8:
            stmts = [
                f'ALTER TABLE {q(t.name)} ALTER COLUMN "amount" SET DEFAULT \'0\';',
                f'ALTER TABLE {q(t.name)} ALTER COLUMN "amount" SET NOT NULL;',
            ]
        else:
            stmts = [f'ALTER TABLE {q(t.name)} ALTER COLUMN "updated_at" DROP DEFAULT;']
        return f"alter_{t.name}", stmts

    def drop_or_rename(self):
        candidates = [t for t in self.tables if t.droppable]
        if not candidates:
            return self.add_columns()
        t = self.rng.choice(candidates)
        col = t.droppable.pop(self.rng.randrange(len(t.droppable)))
        if self.rng.random() < 0.5:
            t.columns.remove(col)
            return f"drop_{col}_{t.name}", [f"ALTER TABLE {q(t.name)} DROP COLUMN {q(col)};"]
        new = f"{col}_v2"
        t.columns[t.columns.index(col)] = new
        t.droppable.append(new)
        return f"rename_{col}_{t.name}", [f"ALTER TABLE {q(t.name)} RENAME COLUMN {q(col)} TO {q(new)};"]

    def migration(self, i):
        if i < 3 or len(self.tables) < 3:
            return self.create_table()
        kinds = [
            (self.create_table, 14), (self.add_columns, 20), (self.add_index, 16), (self.drop_index, 4),
            (self.add_check, 8), (self.add_unique, 6), (self.add_enum_value, 4), (self.convert_kind, 6),
            (self.alter_columns, 12), (self.drop_or_rename, 10),
        ]
        fn = self.rng.choices([k for k, _ in kinds], weights=[w for _, w in kinds])[0]
        return fn()


def write_if_changed(path, text):
    """Leaves an identical file untouched: the Lambda build embeds a generated history, and a
    new mtime would make cargo rebuild it."""
    try:
        with open(path) as f:
            if f.read() == text:
                return
    except FileNotFoundError:
        pass
    with open(path, "w") as f:
        f.write(text)


def generate(out_dir, count, seed=2007):
    """Writes `count` migrations into out_dir/drizzle (drizzle-kit folder), out_dir/sqlx (sqlx
    folder) and out_dir/all.sql; returns a summary."""
    gen = Generator(seed)
    drizzle_dir = os.path.join(out_dir, "drizzle")
    sqlx_dir = os.path.join(out_dir, "sqlx")
    os.makedirs(os.path.join(drizzle_dir, "meta"), exist_ok=True)
    os.makedirs(sqlx_dir, exist_ok=True)
    entries = []
    when = 1_700_000_000_000
    statements = 0
    add_value = 0
    everything = []
    for i in range(count):
        slug, stmts = gen.migration(i)
        if any(" ADD VALUE " in s for s in stmts):
            add_value += 1
        statements += len(stmts)
        tag = f"{i:04d}_{slug}"[:60]
        # Like drizzle-kit: `stmt;--> statement-breakpoint`, the CREATE TABLE block on its own lines.
        body = BREAKPOINT.join(stmts).rstrip("\n")
        # drizzle-kit writes no trailing newline; the hash is over these exact bytes.
        write_if_changed(os.path.join(drizzle_dir, f"{tag}.sql"), body)
        # sqlx: `<version>_<description>.sql`, each run in its own transaction.
        write_if_changed(os.path.join(sqlx_dir, f"{i + 1}_{slug[:50]}.sql"), body + "\n")
        everything.append(f"-- {tag}\n{body}\n")
        when += 3_600_000 + gen.rng.randrange(600_000)
        entries.append({"idx": i, "version": "7", "when": when, "tag": tag, "breakpoints": True})
    # A folder reused from a longer history must not keep that history's extra files.
    keep = {os.path.join(drizzle_dir, e["tag"] + ".sql") for e in entries}
    keep |= {os.path.join(sqlx_dir, n) for n in os.listdir(sqlx_dir) if int(n.split("_", 1)[0]) <= count}
    for d in (drizzle_dir, sqlx_dir):
        for n in os.listdir(d):
            path = os.path.join(d, n)
            if n.endswith(".sql") and path not in keep:
                os.remove(path)
    write_if_changed(os.path.join(drizzle_dir, "meta", "_journal.json"),
                     json.dumps({"version": "7", "dialect": "postgresql", "entries": entries}, indent=2))
    write_if_changed(os.path.join(out_dir, "all.sql"), "\n".join(everything))
    write_if_changed(os.path.join(out_dir, "same_work.sql"), same_work_script(drizzle_dir, entries))
    return {
        "migrations": count,
        "statements": statements,
        "tables": len(gen.tables),
        "enum_types": len(gen.enums),
        "add_value_migrations": add_value,
        "drizzle_dir": drizzle_dir,
        "sqlx_dir": sqlx_dir,
        "sql": os.path.join(out_dir, "all.sql"),
        "same_work_sql": os.path.join(out_dir, "same_work.sql"),
    }


def same_work_script(drizzle_dir, entries):
    """The server-side work wishlist-migrate does for this history, as one psql script: the
    migrations, a duration mark after each, the segment's ledger and history rows in one multi-row
    insert each, and a commit after each ADD VALUE migration (all but the last without waiting for
    the WAL flush, then one synchronous commit standing in for the baseline's write, which
    flushes them). Against plain `psql --single-transaction -f all.sql` it prices the ledger;
    against wishlist-migrate it leaves only the client and protocol overhead. Each migration's
    statements and its mark go as one query (psql's `\\;`), as wishlist-migrate sends them. (The
    history table here is a stand-in of similar width, not the tool's own, and the catalog read
    and its write are left out.)"""
    out = [
        "BEGIN; SET LOCAL synchronous_commit = off;",
        'CREATE SCHEMA IF NOT EXISTS "drizzle";',
        'CREATE TABLE IF NOT EXISTS "drizzle"."__drizzle_migrations" (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint);',
        'CREATE TABLE "drizzle"."bench_history" (id bigserial PRIMARY KEY, run_id text NOT NULL, action text NOT NULL, '
        "tag text NOT NULL, hash text NOT NULL, created_at bigint NOT NULL, succeeded boolean NOT NULL, "
        "finished_at timestamptz NOT NULL DEFAULT now(), duration_ms bigint NOT NULL, db_user text NOT NULL DEFAULT current_user, "
        "invoker text NOT NULL, environment text NOT NULL, tool_version text NOT NULL);",
        "COMMIT;",
    ]
    mark = "SELECT set_config('bench.mark', clock_timestamp()::text, false)"
    segment = []

    def close():
        if not segment:
            return
        out.append("BEGIN; SET LOCAL synchronous_commit = off;")
        for raw, _, _ in segment:
            # drizzle-kit ends every statement with ';'; `\;` makes psql send them as one query.
            pieces = [p.strip().rstrip(";") for p in raw.decode().split(BREAKPOINT) if p.strip()]
            out.append(" \\;\n".join(pieces + [mark]) + ";")
        ledger = ", ".join(f"('{digest}', {e['when']})" for _, digest, e in segment)
        out.append(f'INSERT INTO "drizzle"."__drizzle_migrations" ("hash", "created_at") VALUES {ledger};')
        history = ", ".join(
            f"('bench', 'apply', '{e['tag']}', '{digest}', {e['when']}, true, 1, 'bench', 'dev', '0')" for _, digest, e in segment
        )
        out.append(
            'INSERT INTO "drizzle"."bench_history" (run_id, action, tag, hash, created_at, succeeded, duration_ms, invoker, '
            f"environment, tool_version) VALUES {history};"
        )
        out.append("COMMIT;")
        segment.clear()

    for e in entries:
        with open(os.path.join(drizzle_dir, e["tag"] + ".sql"), "rb") as f:
            raw = f.read()
        segment.append((raw, hashlib.sha256(raw).hexdigest(), e))
        if b" ADD VALUE " in raw:
            close()
    close()
    out.append("SELECT txid_current();")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    import sys

    print(json.dumps(generate(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300), indent=2))
