//! Each rule on the statement it is about, and on its safe alternative; waivers; the live
//! escalation. Migrations are built from SQL as drizzle-kit writes it.

use std::collections::BTreeMap;

use super::*;
use crate::db::table_size::TableSize;
use crate::lint::live::DEFAULT_LARGE_TABLE_ROWS;

const CREATE_ITEMS: &str = "CREATE TABLE \"wishlist_items\" (\n\t\"id\" serial PRIMARY KEY NOT NULL,\n\t\"user_id\" integer NOT NULL,\n\t\"name\" varchar(200) NOT NULL,\n\t\"status\" text DEFAULT 'active' NOT NULL\n);\n";

fn migrations(files: &[&str]) -> Vec<Migration> {
    files
        .iter()
        .enumerate()
        .map(|(i, sql)| Migration::new(i, format!("{i:04}_m"), i as i64, format!("h{i}"), sql, None))
        .collect()
}

fn run(files: &[&str], live: Option<&LiveTables>) -> Vec<Finding> {
    let ms = migrations(files);
    let refs: Vec<&Migration> = ms.iter().collect();
    lint(Layout::Journal, &refs, live)
}

/// Rule ids of the findings of the last file (the earlier ones set the scene).
fn rules_of_last(files: &[&str]) -> Vec<&'static str> {
    let last = format!("{:04}_m", files.len() - 1);
    run(files, None)
        .iter()
        .filter(|f| f.migration == last)
        .map(|f| f.rule.id())
        .collect()
}

fn after_items(sql: &str) -> Vec<&'static str> {
    rules_of_last(&[CREATE_ITEMS, sql])
}

#[test]
fn a_new_table_and_its_indexes_are_clean() {
    let sql = format!("{CREATE_ITEMS}--> statement-breakpoint\nCREATE INDEX \"items_user\" ON \"wishlist_items\" USING btree (\"user_id\");\n--> statement-breakpoint\nALTER TABLE \"wishlist_items\" ADD CONSTRAINT \"c\" CHECK (length(name) > 0);");
    assert_eq!(rules_of_last(&[&sql]), Vec::<&str>::new());
}

#[test]
fn dropping_and_renaming_are_errors_on_an_existing_table() {
    assert_eq!(after_items("DROP TABLE \"wishlist_items\";"), ["drop-table"]);
    assert_eq!(after_items("ALTER TABLE \"wishlist_items\" DROP COLUMN \"name\";"), ["drop-column"]);
    assert_eq!(after_items("ALTER TABLE \"wishlist_items\" RENAME TO \"items\";"), ["rename-table"]);
    assert_eq!(
        after_items("ALTER TABLE \"wishlist_items\" RENAME COLUMN \"name\" TO \"title\";"),
        ["rename-column"]
    );
    // Expand: a new column beside the old one is fine.
    assert_eq!(
        after_items("ALTER TABLE \"wishlist_items\" ADD COLUMN \"title\" varchar(200);"),
        Vec::<&str>::new()
    );
}

#[test]
fn not_null_columns_need_a_default_on_an_existing_table() {
    assert_eq!(
        after_items("ALTER TABLE \"wishlist_items\" ADD COLUMN \"qty\" integer NOT NULL;"),
        ["not-null-column-without-default"]
    );
    assert_eq!(
        after_items("ALTER TABLE \"wishlist_items\" ADD COLUMN \"qty\" integer DEFAULT 1 NOT NULL;"),
        Vec::<&str>::new()
    );
    assert_eq!(
        after_items("ALTER TABLE \"wishlist_items\" ADD COLUMN \"qty\" integer;"),
        Vec::<&str>::new()
    );
}

#[test]
fn enum_values_cannot_be_removed_or_renamed() {
    let create = "CREATE TYPE \"public\".\"item_status\" AS ENUM('active', 'purchased', 'archived');";
    // drizzle-kit's way of removing a value: through text, drop the type, create it again.
    let removal = "ALTER TABLE \"t\" ALTER COLUMN \"status\" SET DATA TYPE text;--> statement-breakpoint\nDROP TYPE \"public\".\"item_status\";--> statement-breakpoint\nCREATE TYPE \"public\".\"item_status\" AS ENUM('active', 'purchased');--> statement-breakpoint\nALTER TABLE \"t\" ALTER COLUMN \"status\" SET DATA TYPE \"public\".\"item_status\" USING \"status\"::\"public\".\"item_status\";";
    let table = "CREATE TABLE \"t\" (\"status\" \"item_status\" NOT NULL);";
    let rules = rules_of_last(&[create, table, removal]);
    assert!(rules.contains(&"enum-value-removed"), "{rules:?}");
    assert!(!rules.contains(&"enum-type-dropped"), "{rules:?}");
    assert_eq!(
        rules_of_last(&[create, "ALTER TYPE \"public\".\"item_status\" RENAME VALUE 'archived' TO 'hidden';"]),
        ["enum-value-renamed"]
    );
    assert_eq!(
        rules_of_last(&[create, table, "DROP TYPE \"public\".\"item_status\";"]),
        ["enum-type-dropped"]
    );
    // Adding a value is the safe way.
    assert_eq!(
        rules_of_last(&[create, "ALTER TYPE \"public\".\"item_status\" ADD VALUE 'hidden';"]),
        Vec::<&str>::new()
    );
    // An enum nothing uses may go.
    assert_eq!(
        rules_of_last(&[create, "DROP TYPE \"public\".\"item_status\";"]),
        Vec::<&str>::new()
    );
}

#[test]
fn an_added_value_cannot_be_used_before_its_migration_commits() {
    let create = "CREATE TYPE \"s\" AS ENUM('a');";
    let same = "ALTER TYPE \"s\" ADD VALUE 'b';--> statement-breakpoint\nUPDATE \"t\" SET \"x\" = 'b';";
    assert_eq!(rules_of_last(&[create, same]), ["enum-value-used-before-commit"]);
    // The same use in the next migration is fine: the planner commits in between.
    assert_eq!(
        rules_of_last(&[create, "ALTER TYPE \"s\" ADD VALUE 'b';", "UPDATE \"t\" SET \"x\" = 'b';"]),
        Vec::<&str>::new()
    );
}

#[test]
fn a_statement_that_cannot_run_in_a_transaction_wants_its_own_migration() {
    let mixed = "ALTER TABLE \"wishlist_items\" ADD COLUMN \"n\" text;--> statement-breakpoint\nCREATE INDEX CONCURRENTLY \"i\" ON \"wishlist_items\" (\"n\");";
    assert_eq!(after_items(mixed), ["non-transactional-mixed"]);
    let alone = "-- wishlist-migrator: no-transaction\nCREATE INDEX CONCURRENTLY \"i\" ON \"wishlist_items\" (\"name\");";
    assert_eq!(after_items(alone), Vec::<&str>::new());
}

#[test]
fn scans_and_rewrites_of_an_existing_table_are_warnings() {
    let cases = [
        ("CREATE INDEX \"i\" ON \"wishlist_items\" (\"name\");", "index-without-concurrently"),
        (
            "ALTER TABLE \"wishlist_items\" ADD CONSTRAINT \"u\" UNIQUE(\"name\");",
            "constraint-builds-index",
        ),
        (
            "ALTER TABLE \"wishlist_items\" ADD CONSTRAINT \"fk\" FOREIGN KEY (\"user_id\") REFERENCES \"users\"(\"id\");",
            "constraint-without-not-valid",
        ),
        (
            "ALTER TABLE \"wishlist_items\" ADD CONSTRAINT \"c\" CHECK (length(name) > 0);",
            "constraint-without-not-valid",
        ),
        (
            "ALTER TABLE \"wishlist_items\" ALTER COLUMN \"status\" SET NOT NULL;",
            "set-not-null",
        ),
        (
            "ALTER TABLE \"wishlist_items\" ALTER COLUMN \"status\" SET DATA TYPE \"item_status\" USING \"status\"::\"item_status\";",
            "column-type-rewrite",
        ),
        (
            "ALTER TABLE \"wishlist_items\" ADD COLUMN \"token\" uuid DEFAULT gen_random_uuid();",
            "volatile-default",
        ),
        ("ALTER TABLE \"wishlist_items\" ADD COLUMN \"seq\" bigserial;", "volatile-default"),
    ];
    for (sql, rule) in cases {
        let found = run(&[CREATE_ITEMS, sql], None);
        let last: Vec<&Finding> = found.iter().filter(|f| f.migration == "0001_m").collect();
        assert_eq!(last.iter().map(|f| f.rule.id()).collect::<Vec<_>>(), [rule], "{sql}");
        assert_eq!(last[0].level, Level::Warning, "{sql}");
        assert_eq!(last[0].table.as_deref(), Some("wishlist_items"), "{sql}");
    }
}

#[test]
fn the_safe_alternatives_are_not_flagged() {
    let safe = [
        "-- wishlist-migrator: no-transaction\nCREATE INDEX CONCURRENTLY \"i\" ON \"wishlist_items\" (\"name\");",
        "ALTER TABLE \"wishlist_items\" ADD CONSTRAINT \"fk\" FOREIGN KEY (\"user_id\") REFERENCES \"users\"(\"id\") NOT VALID;",
        "ALTER TABLE \"wishlist_items\" VALIDATE CONSTRAINT \"fk\";",
        "ALTER TABLE \"wishlist_items\" ADD CONSTRAINT \"u\" UNIQUE USING INDEX \"i\";",
        "ALTER TABLE \"wishlist_items\" ALTER COLUMN \"name\" SET DATA TYPE varchar(500);",
        "ALTER TABLE \"wishlist_items\" ALTER COLUMN \"name\" SET DATA TYPE text;",
        "ALTER TABLE \"wishlist_items\" ADD COLUMN \"added_at\" timestamp DEFAULT now();",
        "ALTER TABLE \"wishlist_items\" ALTER COLUMN \"status\" SET DEFAULT 'new';",
    ];
    for sql in safe {
        assert_eq!(after_items(sql), Vec::<&str>::new(), "{sql}");
    }
}

#[test]
fn set_not_null_after_a_validated_check_does_not_scan() {
    let check = "ALTER TABLE \"wishlist_items\" ADD CONSTRAINT \"store_nn\" CHECK (\"status\" IS NOT NULL) NOT VALID;";
    let validate = "ALTER TABLE \"wishlist_items\" VALIDATE CONSTRAINT \"store_nn\";";
    let set = "ALTER TABLE \"wishlist_items\" ALTER COLUMN \"status\" SET NOT NULL;";
    assert_eq!(rules_of_last(&[CREATE_ITEMS, check, validate, set]), Vec::<&str>::new());
    // Not validated yet: the scan is still there.
    assert_eq!(rules_of_last(&[CREATE_ITEMS, check, set]), ["set-not-null"]);
}

#[test]
fn two_concurrent_builds_alone_are_not_mixed() {
    let both = "CREATE INDEX CONCURRENTLY \"a\" ON \"wishlist_items\" (\"name\");--> statement-breakpoint\nCREATE INDEX CONCURRENTLY \"b\" ON \"wishlist_items\" (\"user_id\");";
    assert_eq!(after_items(both), Vec::<&str>::new());
}

#[test]
fn overriding_lock_timeout_is_a_warning() {
    assert_eq!(
        after_items("SET lock_timeout = 0;--> statement-breakpoint\nALTER TABLE \"wishlist_items\" ADD COLUMN \"n\" text;"),
        ["lock-timeout-overridden"]
    );
}

#[test]
fn a_waiver_with_a_reason_allows_its_rule_on_its_statement_only() {
    let sql = "-- wishlist-migrator: allow drop-column -- unused since release 41, see WISH-2100\nALTER TABLE \"wishlist_items\" DROP COLUMN \"name\";--> statement-breakpoint\nALTER TABLE \"wishlist_items\" DROP COLUMN \"status\";";
    let found = run(&[CREATE_ITEMS, sql], None);
    let last: Vec<&Finding> = found.iter().filter(|f| f.migration == "0001_m").collect();
    assert_eq!(last.len(), 2);
    assert_eq!(last[0].waived.as_deref(), Some("unused since release 41, see WISH-2100"));
    assert!(!last[0].blocks());
    assert!(last[1].waived.is_none() && last[1].blocks());
    assert_eq!((last[1].line, last[1].column), (3, 13));
}

#[test]
fn a_waiver_without_a_reason_or_for_no_rule_is_a_finding() {
    let sql = "-- wishlist-migrator: allow drop-column\nALTER TABLE \"wishlist_items\" DROP COLUMN \"name\";";
    let found = after_items(sql);
    assert_eq!(found, ["waiver-without-reason", "drop-column"]);
    let typo = "-- wishlist-migrator: allow drop-colum -- typo\nALTER TABLE \"wishlist_items\" ADD COLUMN \"n\" text;";
    assert_eq!(after_items(typo), ["unknown-rule-waived"]);
}

#[test]
fn an_unparsable_statement_is_an_error_naming_the_grammar() {
    let found = run(&["ALTER TABLE \"t\" ADD COLUMNN \"x\" int;"], None);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].rule, Rule::UnparsableStatement);
    assert!(found[0].message.contains("syntax error"), "{}", found[0].message);
}

fn live(rows: u64, bytes: u64) -> LiveTables {
    LiveTables {
        sizes: BTreeMap::from([(
            "wishlist_items".to_string(),
            TableSize {
                estimated_rows: rows,
                total_bytes: bytes,
            },
        )]),
        large_table_rows: DEFAULT_LARGE_TABLE_ROWS,
    }
}

#[test]
fn a_large_live_table_turns_a_scan_into_an_error_with_an_estimate() {
    let index = "CREATE INDEX \"i\" ON \"wishlist_items\" (\"name\");";
    let ms = migrations(&[index]);
    let refs: Vec<&Migration> = ms.iter().collect();
    let small = lint(Layout::Journal, &refs, Some(&live(5_000, 1 << 20)));
    assert_eq!(small[0].level, Level::Warning);
    assert!(!small[0].live.as_ref().unwrap().large);
    let big = lint(Layout::Journal, &refs, Some(&live(2_000_000, 800 << 20)));
    assert_eq!(big[0].level, Level::Error);
    let estimate = big[0].live.as_ref().unwrap();
    assert_eq!(estimate.estimated_rows, 2_000_000);
    assert!(estimate.blocks_writes_for.as_millis() > 0);
}

#[test]
fn with_a_live_database_a_table_an_earlier_pending_migration_creates_is_empty() {
    let found = run(
        &[CREATE_ITEMS, "CREATE INDEX \"i\" ON \"wishlist_items\" (\"name\");"],
        Some(&live(0, 0)),
    );
    // live(…) knows wishlist_items: the index is flagged, with its (tiny) estimate.
    assert_eq!(found.len(), 1);
    let unknown = LiveTables {
        sizes: BTreeMap::new(),
        large_table_rows: DEFAULT_LARGE_TABLE_ROWS,
    };
    assert!(run(
        &[CREATE_ITEMS, "CREATE INDEX \"i\" ON \"wishlist_items\" (\"name\");"],
        Some(&unknown)
    )
    .is_empty());
}

#[test]
fn findings_name_the_file_line_and_excerpt() {
    let found = run(&[CREATE_ITEMS, "\n\nALTER TABLE \"wishlist_items\"\n  DROP COLUMN \"name\";"], None);
    let f = &found[0];
    assert_eq!(f.file, "0001_m.sql");
    assert_eq!(f.line, 3);
    assert_eq!(f.excerpt, "ALTER TABLE \"wishlist_items\" DROP COLUMN \"name\"");
    assert!(f.message.contains("\"name\""));
    let json = serde_json::to_value(f).unwrap();
    assert_eq!(json["rule"], "drop-column");
    assert_eq!(json["level"], "error");
}

/// A database none of whose tables exist yet: every migration is pending (a fresh build).
fn fresh() -> LiveTables {
    LiveTables {
        sizes: BTreeMap::new(),
        large_table_rows: DEFAULT_LARGE_TABLE_ROWS,
    }
}

fn rules(found: &[Finding]) -> Vec<&'static str> {
    found.iter().map(|f| f.rule.id()).collect()
}

#[test]
fn a_fresh_build_grades_every_finding_about_what_the_run_created_away() {
    let files = [CREATE_ITEMS, "ALTER TABLE \"wishlist_items\" DROP COLUMN \"name\";"];
    assert_eq!(rules(&run(&files, None)), ["drop-column"]);
    assert_eq!(rules(&run(&files, Some(&fresh()))), Vec::<&str>::new());
    // The gate must grade it against the database even though no size matters to a drop: whether
    // the table is already there decides.
    let ms = migrations(&files);
    let refs: Vec<&Migration> = ms.iter().collect();
    assert!(analyse(Layout::Journal, &refs, |_| true).wants_live_sizes());
}

#[test]
fn an_enum_created_inside_a_do_block_is_created() {
    let wrapped = "DO $$ BEGIN\n CREATE TYPE \"public\".\"kind\" AS ENUM('a', 'b');\nEXCEPTION\n WHEN duplicate_object THEN null;\nEND $$;\n--> statement-breakpoint\nCREATE TABLE \"t\" (\"id\" integer, \"k\" \"kind\");";
    let drop = "ALTER TABLE \"t\" DROP COLUMN \"k\";--> statement-breakpoint\nDROP TYPE \"public\".\"kind\";";
    // Known, with its values: dropping it once nothing uses it is fine, even offline.
    assert_eq!(rules_of_last(&[wrapped, drop]), ["drop-column"]);
    assert_eq!(rules(&run(&[wrapped, drop], Some(&fresh()))), Vec::<&str>::new());
    // Removing a value of it is seen as a removal, not as a drop of an unknown type.
    let removal = "ALTER TABLE \"t\" ALTER COLUMN \"k\" SET DATA TYPE text;--> statement-breakpoint\nDROP TYPE \"public\".\"kind\";--> statement-breakpoint\nCREATE TYPE \"public\".\"kind\" AS ENUM('a');--> statement-breakpoint\nALTER TABLE \"t\" ALTER COLUMN \"k\" SET DATA TYPE \"public\".\"kind\" USING \"k\"::\"public\".\"kind\";";
    let found = rules_of_last(&[wrapped, removal]);
    assert!(found.contains(&"enum-value-removed"), "{found:?}");
    assert!(!found.contains(&"enum-type-dropped"), "{found:?}");
    assert_eq!(rules(&run(&[wrapped, removal], Some(&fresh()))), Vec::<&str>::new());
}

#[test]
fn statements_inside_a_do_block_are_checked_where_they_are_written() {
    let fk = "DO $$ BEGIN\n ALTER TABLE \"wishlist_items\" DROP COLUMN \"name\";\nEXCEPTION\n WHEN undefined_column THEN null;\nEND $$;";
    let found = run(&[CREATE_ITEMS, fk], None);
    assert_eq!(rules(&found), ["drop-column"]);
    assert_eq!((found[0].line, found[0].column), (2, 14), "{:?}", found[0]);
    // Also a finding made when the migration ends (an unknown type dropped and not made again).
    let dropped = run(&["SELECT 1;", "DO $$ BEGIN\n DROP TYPE \"mystery\";\nEND $$;"], None);
    assert_eq!(rules(&dropped), ["enum-type-dropped"]);
    assert_eq!((dropped[0].line, dropped[0].column), (2, 2), "{:?}", dropped[0]);
    // Only the main path: what an exception handler would run is not what the block built.
    assert_eq!(
        checks::embedded_sql("DO $$ BEGIN CREATE TYPE a AS ENUM('x'); EXCEPTION WHEN duplicate_object THEN DROP TYPE b; END $$;"),
        ["CREATE TYPE a AS ENUM('x')"]
    );
}

#[test]
fn a_table_renamed_by_the_run_is_still_one_the_run_created() {
    let renamed = "ALTER TABLE \"wishlist_items\" RENAME TO \"items\";";
    let later = "ALTER TABLE \"items\" ALTER COLUMN \"name\" SET DATA TYPE varchar(300);--> statement-breakpoint\nALTER TABLE \"items\" DROP COLUMN \"name\";";
    // Offline the rename is reported, and the renamed table keeps its columns' types.
    assert_eq!(rules_of_last(&[CREATE_ITEMS, renamed, later]), ["drop-column"]);
    assert_eq!(rules(&run(&[CREATE_ITEMS, renamed, later], Some(&fresh()))), Vec::<&str>::new());
    // Renamed in the migration that creates it: still new there.
    let same =
        format!("{CREATE_ITEMS}--> statement-breakpoint\n{renamed}--> statement-breakpoint\nALTER TABLE \"items\" DROP COLUMN \"name\";");
    assert_eq!(rules_of_last(&[&same]), Vec::<&str>::new());
}

#[test]
fn a_file_that_ends_the_transaction_itself_may_build_concurrently_after_it() {
    let commit_first = "COMMIT;--> statement-breakpoint\nCREATE INDEX CONCURRENTLY \"i\" ON \"wishlist_items\" (\"name\");";
    assert_eq!(after_items(commit_first), Vec::<&str>::new());
    let grouped = "COMMIT;--> statement-breakpoint\nBEGIN;--> statement-breakpoint\nALTER TABLE \"wishlist_items\" ADD COLUMN \"n\" text;--> statement-breakpoint\nALTER TABLE \"wishlist_items\" ADD COLUMN \"m\" text;--> statement-breakpoint\nCOMMIT;--> statement-breakpoint\nCREATE INDEX CONCURRENTLY \"i\" ON \"wishlist_items\" (\"n\");";
    assert_eq!(after_items(grouped), Vec::<&str>::new());
    let ended_after = "ALTER TABLE \"wishlist_items\" ADD COLUMN \"n\" text;--> statement-breakpoint\nCOMMIT;--> statement-breakpoint\nCREATE INDEX CONCURRENTLY \"i\" ON \"wishlist_items\" (\"n\");";
    assert_eq!(after_items(ended_after), Vec::<&str>::new());
    // Still mixed: the build inside the file's own BEGIN, or before its COMMIT.
    let inside = "COMMIT;--> statement-breakpoint\nBEGIN;--> statement-breakpoint\nALTER TABLE \"wishlist_items\" ADD COLUMN \"n\" text;--> statement-breakpoint\nCREATE INDEX CONCURRENTLY \"i\" ON \"wishlist_items\" (\"n\");--> statement-breakpoint\nCOMMIT;";
    assert_eq!(after_items(inside), ["non-transactional-mixed"]);
    let before = "ALTER TABLE \"wishlist_items\" ADD COLUMN \"n\" text;--> statement-breakpoint\nCREATE INDEX CONCURRENTLY \"i\" ON \"wishlist_items\" (\"n\");--> statement-breakpoint\nCOMMIT;";
    assert_eq!(after_items(before), ["non-transactional-mixed"]);
}

#[test]
fn names_resolve_as_postgres_resolves_them() {
    let kind =
        "CREATE TYPE \"kind\" AS ENUM('a', 'b');--> statement-breakpoint\nCREATE TABLE \"app\".\"t\" (\"id\" integer, \"k\" \"kind\");";
    let gone = "ALTER TABLE \"app\".\"t\" DROP COLUMN \"k\";--> statement-breakpoint\nDROP TYPE \"app\".\"kind\";";
    // Created unqualified (in whichever schema the session's search_path puts it), dropped
    // qualified: the same type, known with its values and no longer used.
    assert_eq!(rules_of_last(&[kind, gone]), ["drop-column"]);
    assert_eq!(rules(&run(&[kind, gone], Some(&fresh()))), Vec::<&str>::new());
    let public = "DROP TABLE \"app\".\"t\";--> statement-breakpoint\nDROP TYPE \"public\".\"kind\";";
    assert_eq!(rules(&run(&[kind, public], Some(&fresh()))), Vec::<&str>::new());
    // Qualified when created, unqualified later: the only one of that name.
    let qualified = "CREATE TYPE \"app\".\"mood\" AS ENUM('a', 'b');";
    let recreated = "DROP TYPE \"mood\";--> statement-breakpoint\nCREATE TYPE \"app\".\"mood\" AS ENUM('a');";
    assert_eq!(rules_of_last(&[qualified, recreated]), ["enum-value-removed"]);
    // A search_path the file sets decides where its unqualified names are created.
    let set = "SET search_path TO app, public;--> statement-breakpoint\nCREATE TABLE \"t\" (\"id\" integer, \"x\" text);--> statement-breakpoint\nALTER TABLE \"app\".\"t\" DROP COLUMN \"x\";";
    assert_eq!(rules_of_last(&[set]), Vec::<&str>::new());
}

#[test]
fn with_a_database_postgres_says_which_default_is_volatile() {
    let ms = migrations(&[
        CREATE_ITEMS,
        "ALTER TABLE \"wishlist_items\" ADD COLUMN \"code\" text DEFAULT app.new_code('x');--> statement-breakpoint\n\
         ALTER TABLE \"wishlist_items\" ADD COLUMN \"token\" uuid DEFAULT gen_random_uuid();--> statement-breakpoint\n\
         ALTER TABLE \"wishlist_items\" ADD COLUMN \"added_at\" timestamp DEFAULT now();",
    ]);
    let refs: Vec<&Migration> = ms.iter().collect();
    let volatile_of = |volatile: Option<&BTreeSet<String>>| -> Vec<String> {
        analyse_with(Layout::Journal, &refs, |m| m.idx == 1, volatile)
            .grade(None)
            .iter()
            .filter(|f| f.rule == Rule::VolatileDefault)
            .map(|f| f.message.split('"').nth(1).unwrap().to_string())
            .collect()
    };
    // The catalog as a database would have it: the team's own function declared volatile.
    let catalog: BTreeSet<String> = ["new_code", "gen_random_uuid", "random"].map(String::from).into();
    assert_eq!(volatile_of(Some(&catalog)), ["code", "token"]);
    // Postgres decides, not a list: a function it does not mark volatile is not one.
    let stable: BTreeSet<String> = ["random"].map(String::from).into();
    assert!(volatile_of(Some(&stable)).is_empty());
    // Without a database, the usual functions are known by name; the team's own is not.
    assert_eq!(volatile_of(None), ["token"]);
}
