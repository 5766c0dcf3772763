//! The planner on the lint gate's real findings, graded against a large and a small live table,
//! over SQL as drizzle-kit writes it.

use std::collections::BTreeMap;

use super::not_null::check_name;
use super::*;
use crate::db::table_size::TableSize;
use crate::lint::live::{LiveTables, DEFAULT_LARGE_TABLE_ROWS};
use crate::migrations::source::Layout;

const BREAK: &str = "\n--> statement-breakpoint\n";

fn migration(sql: &str) -> Migration {
    Migration::new(1, "0001_m".into(), 1, "h1".into(), sql, None)
}

fn live(rows: u64) -> LiveTables {
    LiveTables {
        sizes: ["items", "lists"]
            .map(|t| {
                (
                    t.to_string(),
                    TableSize {
                        estimated_rows: rows,
                        total_bytes: rows * 100,
                    },
                )
            })
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
        large_table_rows: DEFAULT_LARGE_TABLE_ROWS,
    }
}

fn planned(sql: &str, rows: u64) -> (Migration, OnlinePlan) {
    let m = migration(sql);
    let findings = crate::lint::lint(Layout::Journal, &[&m], Some(&live(rows)));
    let plan = plan(&m, &findings);
    (m, plan)
}

fn decisions(plan: &OnlinePlan) -> Vec<&str> {
    plan.statements
        .iter()
        .map(|s| match &s.decision {
            Decision::AsWritten => "asWritten",
            Decision::Recipe { recipe, .. } => recipe.as_str(),
            Decision::Refused { rule, .. } => rule.as_str(),
            Decision::Merged { .. } => "merged",
        })
        .collect()
}

fn steps(plan: &OnlinePlan, i: usize) -> Vec<String> {
    match &plan.statements[i].decision {
        Decision::Recipe { steps, .. } => steps.clone(),
        other => panic!("{other:?}"),
    }
}

const INDEX: &str = r#"CREATE INDEX "items_user_idx" ON "items" USING btree ("user_id");"#;
const UNIQUE: &str = r#"CREATE UNIQUE INDEX "items_sku_idx" ON "items" USING btree ("sku");"#;
const FK: &str = r#"ALTER TABLE "items" ADD CONSTRAINT "items_list_id_lists_id_fk" FOREIGN KEY ("list_id") REFERENCES "public"."lists"("id") ON DELETE cascade ON UPDATE no action;"#;
const CHECK: &str = r#"ALTER TABLE "items" ADD CONSTRAINT "items_qty_check" CHECK ("items"."qty" > 0);"#;
const NOT_NULL: &str = r#"ALTER TABLE "items" ALTER COLUMN "list_id" SET NOT NULL;"#;
const ADD_COLUMN: &str = r#"ALTER TABLE "items" ADD COLUMN "note" text;"#;
const TYPE_CHANGE: &str = r#"ALTER TABLE "items" ALTER COLUMN "store" SET DATA TYPE "public"."store" USING "store"::"public"."store";"#;
/// No recipe: an identity column fills every row as it is added.
const NO_RECIPE: &str = r#"ALTER TABLE "items" ADD COLUMN "seq" integer GENERATED ALWAYS AS IDENTITY;"#;

#[test]
fn on_a_small_table_everything_runs_as_written_and_nothing_is_rewritten() {
    let sql = [INDEX, FK, CHECK, NOT_NULL, TYPE_CHANGE].join(BREAK);
    let (_, plan) = planned(&sql, 10);
    assert_eq!(decisions(&plan), ["asWritten"; 5]);
    assert!(!plan.has_recipe() && plan.refused().is_none());
}

#[test]
fn on_a_large_table_each_blocking_statement_gets_its_recipe() {
    let sql = [ADD_COLUMN, INDEX, UNIQUE, FK, CHECK, NOT_NULL].join(BREAK);
    let (_, plan) = planned(&sql, 5_000_000);
    assert_eq!(
        decisions(&plan),
        [
            "asWritten",
            "createIndexConcurrently",
            "createIndexConcurrently",
            "addNotValidThenValidate",
            "addNotValidThenValidate",
            "setNotNullThroughCheck"
        ]
    );
    assert_eq!(
        steps(&plan, 1),
        ["CREATE INDEX CONCURRENTLY items_user_idx ON items USING btree (user_id)"]
    );
    assert_eq!(
        steps(&plan, 3),
        [
            "ALTER TABLE items ADD CONSTRAINT items_list_id_lists_id_fk FOREIGN KEY (list_id) REFERENCES public.lists (id) ON DELETE CASCADE NOT VALID",
            r#"ALTER TABLE "items" VALIDATE CONSTRAINT "items_list_id_lists_id_fk""#,
        ]
    );
    assert_eq!(
        steps(&plan, 5),
        [
            r#"ALTER TABLE "items" ADD CONSTRAINT "items_list_id_online_not_null" CHECK ("list_id" IS NOT NULL) NOT VALID"#,
            r#"ALTER TABLE "items" VALIDATE CONSTRAINT "items_list_id_online_not_null""#,
            r#"ALTER TABLE "items" ALTER COLUMN "list_id" SET NOT NULL"#,
            r#"ALTER TABLE "items" DROP CONSTRAINT "items_list_id_online_not_null""#,
        ]
    );
    assert_eq!(plan.statements[3].line, 7, "lines are the file's");
    assert!(
        plan.statements[1].estimated_ms.is_some_and(|ms| ms > 0),
        "the table's size gives the scan's time"
    );
    assert_eq!(plan.statements[0].estimated_ms, None, "nothing blocks as written");
}

#[test]
fn a_blocking_statement_without_a_recipe_is_refused_by_its_rule() {
    let sql = [INDEX, NO_RECIPE].join(BREAK);
    let (_, plan) = planned(&sql, 5_000_000);
    assert_eq!(decisions(&plan), ["createIndexConcurrently", "volatile-default"]);
    let refused = plan.refused().unwrap();
    assert_eq!(refused.statement, 2);
    let Decision::Refused { reason, .. } = &refused.decision else {
        unreachable!()
    };
    assert!(reason.contains("no online recipe"), "{reason}");
}

#[test]
fn a_unique_constraint_builds_its_index_concurrently_and_a_primary_key_has_no_recipe() {
    let sql = r#"ALTER TABLE "items" ADD CONSTRAINT "items_sku_unique" UNIQUE("sku");"#;
    let (m, plan) = planned(sql, 5_000_000);
    assert_eq!(decisions(&plan), ["buildUniqueIndexThenAttach"]);
    let online = rewrite(&m, &plan);
    assert_eq!(online.statements[0].autocommit_reason(), Some("CREATE INDEX CONCURRENTLY"));
    assert_eq!(
        online.statements[1].sql,
        r#"ALTER TABLE "items" ADD CONSTRAINT "items_sku_unique" UNIQUE USING INDEX "items_sku_unique""#
    );
    let sql = r#"ALTER TABLE "items" ADD CONSTRAINT "items_pk" PRIMARY KEY("sku");"#;
    let (_, plan) = planned(sql, 5_000_000);
    assert_eq!(decisions(&plan), ["constraint-builds-index"]);
}

#[test]
fn the_rewritten_migration_runs_step_by_step_under_the_files_hash() {
    let sql = [ADD_COLUMN, INDEX, NOT_NULL].join(BREAK);
    let (m, plan) = planned(&sql, 5_000_000);
    let online = rewrite(&m, &plan);
    assert_eq!(online.hash, m.hash);
    assert_eq!((online.tag.as_str(), online.created_at), (m.tag.as_str(), m.created_at));
    assert!(matches!(online.mode(), TransactionMode::Autocommit { .. }));
    assert_eq!(online.statements.len(), 1 + 1 + 4);
    assert_eq!(online.statements[0], m.statements[0]);
    assert_eq!(online.statements[1].autocommit_reason(), Some("CREATE INDEX CONCURRENTLY"));
    assert!(online.statements[2..]
        .iter()
        .all(|s| s.autocommit_reason().is_none() && s.line == m.statements[2].line));
}

#[test]
fn planning_twice_gives_the_same_steps_so_a_resumed_run_recognises_them() {
    let sql = [FK, NOT_NULL].join(BREAK);
    let (m, first) = planned(&sql, 5_000_000);
    let (_, second) = planned(&sql, 5_000_000);
    assert_eq!(rewrite(&m, &first).statements, rewrite(&m, &second).statements);
}

#[test]
fn a_waived_finding_runs_as_written() {
    let sql = format!("-- wishlist-migrator: allow index-without-concurrently -- built at night\n{INDEX}");
    let (_, plan) = planned(&sql, 5_000_000);
    assert_eq!(decisions(&plan), ["asWritten"]);
}

#[test]
fn the_temporary_check_name_fits_postgres() {
    let long = "x".repeat(60);
    assert_eq!(check_name(&long, "c").len(), 63);
    assert_eq!(check_name("items", "qty"), "items_qty_online_not_null");
}

#[test]
fn drizzle_kits_breakpoints_at_the_end_of_a_line_keep_each_finding_on_its_statement() {
    let sql = [INDEX, FK, NOT_NULL].join("--> statement-breakpoint\n");
    let (_, plan) = planned(&sql, 5_000_000);
    assert_eq!(
        decisions(&plan),
        ["createIndexConcurrently", "addNotValidThenValidate", "setNotNullThroughCheck"]
    );
}

#[test]
fn under_online_the_findings_a_recipe_answers_stop_blocking_and_others_do_not() {
    let m = migration(&[INDEX, FK].join(BREAK));
    let mut findings = crate::lint::lint(Layout::Journal, &[&m], Some(&live(5_000_000)));
    let plans = [plan(&m, &findings)];
    assert!(hint(&plans, false).contains("`--online`"), "{}", hint(&plans, false));
    answer(&plans, &mut findings);
    assert!(findings.iter().all(|f| !f.blocks()), "{findings:?}");

    let m = migration(&[INDEX, NO_RECIPE].join(BREAK));
    let mut findings = crate::lint::lint(Layout::Journal, &[&m], Some(&live(5_000_000)));
    let plans = [plan(&m, &findings)];
    answer(&plans, &mut findings);
    assert_eq!(
        findings.iter().filter(|f| f.blocks()).count(),
        2,
        "nothing of a refused migration is answered"
    );
    let said = hint(&plans, true);
    assert!(
        said.contains("no recipe for 0001_m statement 2 (line 3, volatile-default)"),
        "{said}"
    );
    let said = hint(&plans, false);
    assert!(
        said.contains("`--online` has lock-safe recipes for 1 of the blocking statements, but no recipe for 0001_m statement 2"),
        "{said}"
    );
    let m = migration(NO_RECIPE);
    let findings = crate::lint::lint(Layout::Journal, &[&m], Some(&live(5_000_000)));
    assert_eq!(hint(&[plan(&m, &findings)], false), "", "no recipe at all: nothing to offer");
}

#[test]
fn a_continued_plan_keeps_the_recipes_of_statements_no_longer_blocking() {
    let sql = [INDEX, NO_RECIPE].join(BREAK);
    let m = migration(&sql);
    let findings = crate::lint::lint(Layout::Journal, &[&m], Some(&live(10)));
    assert_eq!(decisions(&plan(&m, &findings)), ["asWritten", "asWritten"]);
    // The identity column has no recipe and does not block: it runs as written.
    assert_eq!(decisions(&plan_continued(&m, &findings)), ["createIndexConcurrently", "asWritten"]);
}

#[test]
fn drizzles_default_random_on_a_large_table_is_added_then_backfilled() {
    let sql = [
        INDEX,
        r#"ALTER TABLE "items" ADD COLUMN "token" uuid DEFAULT gen_random_uuid() NOT NULL;"#,
    ]
    .join(BREAK);
    let (_, plan) = planned(&sql, 5_000_000);
    assert_eq!(decisions(&plan), ["createIndexConcurrently", "addThenBackfillDefault"]);
    assert_eq!(steps(&plan, 1).len(), 7, "add, default, backfill and the four NOT NULL steps");
    let (_, plan) = planned(&sql, 10);
    assert_eq!(decisions(&plan), ["asWritten", "asWritten"], "a small table is written at once");
}

const CURRENCY_DEFAULT: &str = r#"ALTER TABLE "items" ALTER COLUMN "currency" SET DEFAULT 'USD'::"public"."currency";"#;
const CURRENCY: &str =
    r#"ALTER TABLE "items" ALTER COLUMN "currency" SET DATA TYPE "public"."currency" USING "currency"::"public"."currency";"#;

#[test]
fn consecutive_type_changes_of_one_table_run_as_one_recipe_with_a_default_between_them_folded_in() {
    // WISH-2007's 0001: store's type, currency's default, currency's type.
    let sql = [TYPE_CHANGE, CURRENCY_DEFAULT, CURRENCY, ADD_COLUMN].join(BREAK);
    let (m, plan) = planned(&sql, 5_000_000);
    assert_eq!(decisions(&plan), ["merged", "asWritten", "expandBackfillSwap", "asWritten"]);
    assert_eq!(plan.statements[0].decision, Decision::Merged { into: 3 });
    let steps = steps(&plan, 2);
    assert_eq!(
        steps[0], r#"ALTER TABLE "items" ADD COLUMN "store__wm_new" public.store, ADD COLUMN "currency__wm_new" public.currency"#,
        "one expand adds both columns"
    );
    assert_eq!(
        steps.iter().filter(|s| s.starts_with("CREATE TRIGGER")).count(),
        1,
        "one trigger: {steps:?}"
    );
    let backfills: Vec<_> = steps
        .iter()
        .filter(|s| s.starts_with("-- wishlist-migrator: online backfill"))
        .collect();
    assert_eq!(backfills.len(), 1, "one backfill pass");
    let (_, cts) = change_type::phase(&Statement::new(backfills[0].clone(), 1)).unwrap();
    assert_eq!(cts.iter().map(|c| c.column.as_str()).collect::<Vec<_>>(), ["store", "currency"]);
    // The default runs as written before the merged recipe (where it ran before currency's
    // change), and the plan prints, rewrites and resumes the same every time.
    let online = rewrite(&m, &plan);
    assert_eq!(online.statements[0], m.statements[1]);
    assert_eq!(online.statements.len(), 1 + steps.len() + 1);
    let (_, again) = planned(&sql, 5_000_000);
    assert_eq!(rewrite(&m, &again).statements, online.statements);
    let json = serde_json::to_value(&plan.statements[0]).unwrap();
    assert_eq!((json["decision"].as_str(), json["into"].as_u64()), (Some("merged"), Some(3)));
}

#[test]
fn a_run_of_type_changes_ends_at_another_table_an_unfoldable_statement_or_a_column_changed_twice() {
    let lists = r#"ALTER TABLE "lists" ALTER COLUMN "store" SET DATA TYPE "public"."store" USING "store"::"public"."store";"#;
    let (_, plan) = planned(&[TYPE_CHANGE, lists].join(BREAK), 5_000_000);
    assert_eq!(decisions(&plan), ["expandBackfillSwap", "expandBackfillSwap"], "another table");

    let (_, plan) = planned(&[TYPE_CHANGE, ADD_COLUMN, CURRENCY].join(BREAK), 5_000_000);
    assert_eq!(
        decisions(&plan),
        ["expandBackfillSwap", "asWritten", "expandBackfillSwap"],
        "a statement the recipe cannot fold in"
    );

    let twice = r#"ALTER TABLE "items" ALTER COLUMN "store" SET DATA TYPE text;"#;
    let (_, plan) = planned(&[TYPE_CHANGE, CURRENCY, twice].join(BREAK), 5_000_000);
    assert_eq!(
        decisions(&plan),
        ["merged", "expandBackfillSwap", "expandBackfillSwap"],
        "a column changed twice starts a run of its own"
    );

    // The default of a column already changed in the run must follow its swap: it ends the run.
    let store_default = r#"ALTER TABLE "items" ALTER COLUMN "store" SET DEFAULT 'LEGO';"#;
    let (_, plan) = planned(&[TYPE_CHANGE, store_default, CURRENCY].join(BREAK), 5_000_000);
    assert_eq!(decisions(&plan), ["expandBackfillSwap", "asWritten", "expandBackfillSwap"]);

    // On a small table nothing has a recipe, so nothing merges.
    let (_, plan) = planned(&[TYPE_CHANGE, CURRENCY].join(BREAK), 10);
    assert_eq!(decisions(&plan), ["asWritten", "asWritten"]);
}
