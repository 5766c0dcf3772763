//! The rollback planner's tests: which migrations a target undoes, in which order, and what the
//! down files put at risk.

use super::*;
use crate::db::ledger::LedgerRow;
use crate::engine::plan::assess;
use crate::migrations::source::TransactionMode;
use crate::migrations::statement::split;

fn stmt(sql: &str) -> Statement {
    Statement::new(sql, 1)
}

#[test]
fn finds_what_down_statements_destroy() {
    let t = |s: &str| Destroys::Table(s.into());
    let col = |t: &str, c: &str| Destroys::Column {
        table: t.into(),
        column: c.into(),
    };
    assert_eq!(destroys(&stmt("DROP TABLE \"wishlist_items\";")), [t("\"wishlist_items\"")]);
    assert_eq!(
        destroys(&stmt("drop table if exists a, public.B cascade")),
        [t("\"a\""), t("\"public\".\"b\"")]
    );
    assert_eq!(destroys(&stmt("TRUNCATE TABLE ONLY \"x\"")), [t("\"x\"")]);
    assert_eq!(
        destroys(&stmt("ALTER TABLE \"wishlist_items\" DROP COLUMN \"updated_by\";")),
        [col("\"wishlist_items\"", "updated_by")]
    );
    assert_eq!(
        destroys(&stmt(
            "alter table if exists only t drop column if exists a, drop b cascade, add column c int, alter column d drop default"
        )),
        [col("\"t\"", "a"), col("\"t\"", "b")]
    );
    assert_eq!(
        destroys(&stmt("DROP SCHEMA IF EXISTS \"app\" CASCADE")),
        [Destroys::Schema("app".into())]
    );
    for harmless in [
        "ALTER TABLE \"wishlist_items\" DROP CONSTRAINT \"priority_range_check\";",
        "ALTER TABLE \"wishlist_items\" ALTER COLUMN \"currency\" DROP DEFAULT;",
        "DROP INDEX \"idx_wishlist_user_store_priority\";",
        "DROP TYPE \"public\".\"wishlist_store\";",
        "ALTER TABLE \"wishlist_items\" ALTER COLUMN \"store\" SET DATA TYPE text USING \"store\"::text;",
        "CREATE INDEX \"i\" ON \"t\" (\"a\");",
        "ALTER TYPE \"e\" RENAME VALUE 'a' TO 'b'",
        "DROP INDEX \"i\" CASCADE",
        "-- DROP TABLE x\nCOMMENT ON TABLE t IS 'x'",
    ] {
        assert_eq!(destroys(&stmt(harmless)), [], "{harmless}");
    }
    for unreadable in [
        "DELETE FROM \"wishlist_items\" WHERE store = 'x'",
        "UPDATE t SET a = NULL",
        "DO $$ BEGIN EXECUTE 'drop table t'; END $$",
        "DROP TYPE \"public\".\"wishlist_store\" CASCADE",
        "DROP EXTENSION \"pg_trgm\"",
        "INSERT INTO t SELECT 1 ON CONFLICT (a) DO UPDATE SET b = 2",
        "SELECT drop_everything()",
        "ALTER TABLE",
        "DROP TABLE \"t\"; DELETE FROM \"u\"",
    ] {
        assert!(destroys(&stmt(unreadable)).contains(&Destroys::Unclassified), "{unreadable}");
    }
}

#[test]
fn the_projects_down_files_destroy_what_they_should() {
    let down = split(include_str!("../../migrations/0001_wish_2007_enums_audit.down.sql"));
    let all: Vec<Destroys> = down.iter().flat_map(destroys).collect();
    assert_eq!(
        all,
        [
            Destroys::Column {
                table: "\"wishlist_items\"".into(),
                column: "updated_by".into()
            },
            Destroys::Column {
                table: "\"wishlist_items\"".into(),
                column: "created_by".into()
            },
        ]
    );
    let down = split(include_str!("../../migrations/0000_create_wishlist_items.down.sql"));
    assert_eq!(
        down.iter().flat_map(destroys).collect::<Vec<_>>(),
        [Destroys::Table("\"wishlist_items\"".into())]
    );
}

fn migration(idx: usize, down: Option<&str>) -> Migration {
    Migration {
        idx,
        tag: format!("000{idx}_m"),
        created_at: 100 * (idx as i64 + 1),
        name: None,
        hash: format!("h{idx}"),
        statements: vec![],
        marked_no_transaction: false,
        commit_after: false,
        down: down.map(|sql| DownScript { statements: split(sql) }),
        needs: crate::migrations::source::Needs {
            mode: TransactionMode::Transaction,
            adds_enum_value: false,
            ends_transaction: false,
        }
        .into(),
    }
}

fn rows(ms: &[Migration]) -> Vec<LedgerRow> {
    ms.iter()
        .enumerate()
        .map(|(i, m)| LedgerRow {
            id: i as i32 + 1,
            hash: m.hash.clone(),
            created_at: Some(m.created_at),
            name: None,
        })
        .collect()
}

#[test]
fn plans_newest_first_down_to_the_target() {
    let ms = vec![
        migration(0, Some("DROP TABLE a")),
        migration(1, Some("DROP TABLE b")),
        migration(2, Some("DROP TABLE c")),
    ];
    let a = assess(&rows(&ms), &ms);
    let p = plan(&a, &ms, &RollbackTarget::parse("0000_m"), false).unwrap();
    let tags: Vec<&str> = p.steps.iter().map(|s| s.migration.tag.as_str()).collect();
    assert_eq!(tags, ["0002_m", "0001_m"]);
    let p = plan(&a, &ms, &RollbackTarget::parse("none"), false).unwrap();
    assert_eq!(p.steps.len(), 3);
    let p = plan(&a, &ms, &RollbackTarget::parse("0002_m"), false).unwrap();
    assert!(p.steps.is_empty());
}

#[test]
fn refuses_missing_down_files_and_unknown_or_unapplied_targets() {
    let ms = vec![
        migration(0, Some("DROP TABLE a")),
        migration(1, None),
        migration(2, Some("DROP TABLE c")),
    ];
    let a = assess(&rows(&ms), &ms);
    let err = plan(&a, &ms, &RollbackTarget::parse("0000_m"), false).unwrap_err();
    assert!(
        matches!(&err, RollbackError::MissingDownFile { tag, .. } if tag == "0001_m"),
        "{err}"
    );
    assert!(
        plan(&a, &ms, &RollbackTarget::parse("0001_m"), false).is_ok(),
        "0001 itself stays applied"
    );
    let err = plan(&a, &ms, &RollbackTarget::parse("0009_x"), false).unwrap_err();
    assert!(matches!(err, RollbackError::Plan(PlanError::UnknownTarget { .. })));
    let partial = assess(&rows(&ms[..1]), &ms);
    let err = plan(&partial, &ms, &RollbackTarget::parse("0002_m"), false).unwrap_err();
    assert!(
        matches!(&err, RollbackError::TargetNotApplied { current, .. } if current == "0000_m"),
        "{err}"
    );
}

#[test]
fn refuses_concurrent_statements_changed_files_and_stray_rows() {
    let ms = vec![migration(0, Some("DROP TABLE a")), migration(1, Some("DROP INDEX CONCURRENTLY i"))];
    let a = assess(&rows(&ms), &ms);
    assert!(matches!(
        plan(&a, &ms, &RollbackTarget::Empty, false),
        Err(RollbackError::NeedsAutocommit { index: 1, .. })
    ));

    let ms = vec![migration(0, Some("DROP TABLE a")), migration(1, Some("DROP TABLE b"))];
    let mut changed = rows(&ms);
    changed[1].hash = "old".into();
    let a = assess(&changed, &ms);
    assert!(matches!(
        plan(&a, &ms, &RollbackTarget::parse("0000_m"), false),
        Err(RollbackError::Plan(PlanError::ChecksumMismatch { .. }))
    ));

    let mut stray = rows(&ms);
    stray.push(LedgerRow {
        id: 9,
        hash: "zz".into(),
        created_at: Some(50),
        name: None,
    });
    let a = assess(&stray, &ms);
    assert!(matches!(
        plan(&a, &ms, &RollbackTarget::parse("0000_m"), false),
        Err(RollbackError::Plan(PlanError::UnknownRows { .. }))
    ));
    assert!(
        plan(&a, &ms, &RollbackTarget::parse("0000_m"), true).is_ok(),
        "an old stray row may be allowed"
    );
    let mut newer = rows(&ms);
    newer.push(LedgerRow {
        id: 9,
        hash: "zz".into(),
        created_at: Some(10_000),
        name: None,
    });
    let a = assess(&newer, &ms);
    assert!(matches!(
        plan(&a, &ms, &RollbackTarget::parse("0000_m"), true),
        Err(RollbackError::UnknownRowsAfterTarget { .. })
    ));
}

#[test]
fn targets_parse() {
    assert_eq!(RollbackTarget::parse("none"), RollbackTarget::Empty);
    assert_eq!(RollbackTarget::parse(" 0000_x "), RollbackTarget::Migration("0000_x".into()));
    assert_eq!(RollbackTarget::Empty.to_string(), "none");
}
