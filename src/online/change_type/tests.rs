use super::*;
use crate::sql::change_type::change_type;

const STORE: &str = r#"ALTER TABLE "wishlist_items" ALTER COLUMN "store" SET DATA TYPE "public"."wishlist_store" USING "store"::"public"."wishlist_store";"#;

fn ct() -> ChangeType {
    change_type(STORE).unwrap()
}

fn facts() -> Facts {
    Facts {
        key: vec![KeyColumn {
            name: "id".into(),
            type_sql: "uuid".into(),
        }],
        not_null: true,
        default: Some("'LEGO'::wishlist_store".into()),
        indexes: vec![IndexFact {
            name: "idx_wishlist_user_store".into(),
            def: "CREATE INDEX idx_wishlist_user_store ON public.wishlist_items USING btree (user_id, store)".into(),
            constraint: None,
        }],
        constraints: vec![ConstraintFact {
            name: "store_not_empty".into(),
            def: "CHECK ((store <> 'x'::text))".into(),
        }],
        blockers: vec![],
    }
}

#[test]
fn the_steps_expand_then_name_their_phase_and_read_back_the_same_statement() {
    let steps = steps(&Statement::new(STORE, 3)).unwrap();
    assert_eq!(steps.len(), expand_steps(1) + 3);
    assert_eq!(
        steps[0],
        r#"ALTER TABLE "wishlist_items" ADD COLUMN "store__wm_new" public.wishlist_store"#
    );
    assert!(steps[1].contains(r#"NEW."store__wm_new" := (SELECT store::public.wishlist_store FROM (SELECT NEW.*) AS "wishlist_items")"#));
    assert!(
        steps[1].contains("EXCEPTION WHEN OTHERS THEN"),
        "a refused value never fails a writer"
    );
    assert!(steps[3].starts_with(r#"CREATE TRIGGER "wishlist_items_store__wm_sync" BEFORE INSERT OR UPDATE ON "wishlist_items""#));
    assert!(
        steps[3].contains("WHEN (current_setting('wishlist_migrator.backfill', true) IS DISTINCT FROM 'on')"),
        "the backfill's own UPDATE does not enter the function: {}",
        steps[3]
    );
    let phases: Vec<Phase> = steps
        .iter()
        .filter_map(|s| phase(&Statement::new(s.clone(), 3)).map(|p| p.0))
        .collect();
    assert_eq!(phases, [Phase::Backfill, Phase::Rebuild, Phase::Swap]);
    assert_eq!(phase(&Statement::new(steps[6].clone(), 3)).unwrap().1, vec![ct()]);
    assert_eq!(phase(&Statement::new(STORE, 3)), None);
    // Every step parses as SQL.
    for s in &steps {
        assert!(pg_query::parse(s).is_ok(), "{s}");
    }
}

#[test]
fn refused_without_a_primary_key_or_with_a_dependent_view() {
    assert_eq!(refusal(&ct(), &facts()), None);
    let keyless = Facts { key: vec![], ..facts() };
    assert!(refusal(&ct(), &keyless).unwrap().contains("wishlist_items has no primary key"));
    let viewed = Facts {
        blockers: vec!["view public.stores_v".into()],
        ..facts()
    };
    assert!(refusal(&ct(), &viewed)
        .unwrap()
        .contains("while view public.stores_v depends on it"));
}

#[test]
fn rebuilds_not_null_constraints_and_indexes_on_the_new_column_then_swaps_their_names() {
    let r = rebuild(&[(ct(), facts())]).unwrap();
    let sql: Vec<&str> = r
        .iter()
        .map(|s| match s {
            Rebuild::Index { sql, .. } | Rebuild::Constraint { sql, .. } | Rebuild::Validate { sql, .. } => sql.as_str(),
        })
        .collect();
    assert_eq!(
        sql,
        [
            r#"ALTER TABLE "wishlist_items" ADD CONSTRAINT "wishlist_items_store__wm_not_null" CHECK ("store__wm_new" IS NOT NULL) NOT VALID"#,
            r#"ALTER TABLE "wishlist_items" VALIDATE CONSTRAINT "wishlist_items_store__wm_not_null""#,
            r#"ALTER TABLE wishlist_items ADD CONSTRAINT store_not_empty__wm CHECK (store__wm_new <> 'x'::text) NOT VALID"#,
            r#"ALTER TABLE "wishlist_items" VALIDATE CONSTRAINT "store_not_empty__wm""#,
            "CREATE INDEX CONCURRENTLY idx_wishlist_user_store__wm ON public.wishlist_items USING btree (user_id, store__wm_new)",
        ]
    );
    let swap = swap(&[(ct(), facts())]);
    assert_eq!(swap[3], r#"ALTER TABLE "wishlist_items" DROP COLUMN "store""#);
    assert_eq!(swap[4], r#"ALTER TABLE "wishlist_items" RENAME COLUMN "store__wm_new" TO "store""#);
    assert!(swap.contains(&r#"ALTER INDEX "idx_wishlist_user_store__wm" RENAME TO "idx_wishlist_user_store""#.to_string()));
    assert!(swap.contains(&r#"ALTER TABLE "wishlist_items" RENAME CONSTRAINT "store_not_empty__wm" TO "store_not_empty""#.to_string()));
    assert_eq!(
        &swap[swap.len() - 3..],
        [
            r#"ALTER TABLE "wishlist_items" ALTER COLUMN "store" SET DEFAULT 'LEGO'::wishlist_store"#,
            r#"ALTER TABLE "wishlist_items" ALTER COLUMN "store" SET NOT NULL"#,
            r#"ALTER TABLE "wishlist_items" DROP CONSTRAINT "wishlist_items_store__wm_not_null""#,
        ]
    );
}

#[test]
fn a_nullable_column_keeps_a_refused_value_from_becoming_null_at_the_swap() {
    let nullable = Facts {
        not_null: false,
        ..facts()
    };
    let r = rebuild(&[(ct(), nullable.clone())]).unwrap();
    let Rebuild::Constraint { name, sql } = &r[0] else {
        panic!("{r:?}")
    };
    assert_eq!(name, "wishlist_items_store__wm_converted");
    assert_eq!(
        sql,
        r#"ALTER TABLE "wishlist_items" ADD CONSTRAINT "wishlist_items_store__wm_converted" CHECK (("store" IS NULL) = ("store__wm_new" IS NULL)) NOT VALID"#
    );
    assert!(matches!(&r[1], Rebuild::Validate { name, .. } if name == "wishlist_items_store__wm_converted"));
    let swap = swap(&[(ct(), nullable)]);
    let drop_check = swap
        .iter()
        .position(|s| s.contains(r#"DROP CONSTRAINT "wishlist_items_store__wm_converted""#));
    let drop_column = swap.iter().position(|s| s.ends_with(r#"DROP COLUMN "store""#));
    assert!(drop_check.unwrap() < drop_column.unwrap(), "{swap:?}");
    assert!(!swap.iter().any(|s| s.contains("SET NOT NULL")), "{swap:?}");
}

#[test]
fn the_backfill_walks_the_key_in_order_and_skips_converted_rows() {
    let b = backfill(&[ct()], &facts().key, 20);
    assert!(
        b.next
            .contains(r#"WHERE ("id") > (($2::text[])[1]::uuid) ORDER BY "id" LIMIT $1::int"#),
        "{}",
        b.next
    );
    assert!(
        b.next
            .contains(r#"AND ("store__wm_new" IS DISTINCT FROM (store::public.wishlist_store))"#),
        "{}",
        b.next
    );
    assert!(
        b.refused[0].contains(r#"NOT "wishlist_items_store__wm_ok"(wm_t)"#),
        "{}",
        b.refused[0]
    );
    for sql in [&b.first, &b.next, &b.fallback, &b.refused[0]] {
        assert!(pg_query::parse(sql).is_ok(), "{sql}");
    }
    assert!(
        b.next
            .contains(r#"WHERE ("id") > (($2::text[])[1]::uuid) AND ("id") <= ((SELECT "id" FROM l)) AND"#),
        "the UPDATE reads one range of the key: {}",
        b.next
    );
    let pair = [("tenant", "int4"), ("sku", "text")].map(|(name, type_sql)| KeyColumn {
        name: name.into(),
        type_sql: type_sql.into(),
    });
    let composite = backfill(&[ct()], &pair, 20);
    assert!(
        composite.next.contains(
            r#"("tenant", "sku") > (($2::text[])[1]::int4, ($2::text[])[2]::text) AND ("tenant", "sku") <= ((SELECT "tenant" FROM l), (SELECT "sku" FROM l))"#
        ),
        "a row comparison of scalars, which the index reads as a range: {}",
        composite.next
    );
    for sql in [&composite.first, &composite.next, &composite.fallback] {
        assert!(pg_query::parse(sql).is_ok(), "{sql}");
    }
}

#[test]
fn batches_grow_and_shrink_toward_the_target_time() {
    assert_eq!(next_batch(1000, 50, 150), 2000);
    assert_eq!(next_batch(1000, 300, 150), 500);
    assert_eq!(next_batch(1000, 150, 150), 1000);
    assert_eq!(next_batch(100, 10_000, 150), 100);
    assert_eq!(next_batch(40_000, 1, 150), 50_000);
}

#[test]
fn names_fit_postgres() {
    let long = "x".repeat(70);
    assert_eq!(name(&long, "__wm").len(), 63);
    assert!(name(&long, "__wm").ends_with("__wm"));
}

const CURRENCY: &str = r#"ALTER TABLE "wishlist_items" ALTER COLUMN "currency" SET DATA TYPE "public"."wishlist_currency" USING "currency"::"public"."wishlist_currency";"#;

fn merged() -> Vec<Column> {
    let currency = change_type(CURRENCY).unwrap();
    let both = IndexFact {
        name: "idx_store_currency".into(),
        def: "CREATE INDEX idx_store_currency ON public.wishlist_items USING btree (store, currency)".into(),
        constraint: None,
    };
    let mut store = facts();
    store.indexes.push(both.clone());
    let currency_facts = Facts {
        not_null: false,
        default: Some("'USD'::wishlist_currency".into()),
        indexes: vec![both],
        constraints: vec![],
        ..facts()
    };
    vec![(ct(), store), (currency, currency_facts)]
}

#[test]
fn a_merged_change_rebuilds_an_index_on_both_columns_once_and_swaps_both_in_one_transaction() {
    let cols = merged();
    let r = rebuild(&cols).unwrap();
    let indexes: Vec<&str> = r
        .iter()
        .filter_map(|s| match s {
            Rebuild::Index { sql, .. } => Some(sql.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        indexes,
        [
            "CREATE INDEX CONCURRENTLY idx_wishlist_user_store__wm ON public.wishlist_items USING btree (user_id, store__wm_new)",
            "CREATE INDEX CONCURRENTLY idx_store_currency__wm ON public.wishlist_items USING btree (store__wm_new, currency__wm_new)",
        ]
    );
    // Each column keeps its own guarantee: store's NOT NULL, currency's converted-together check.
    let checks: Vec<&str> = r
        .iter()
        .filter_map(|s| match s {
            Rebuild::Constraint { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        checks,
        [
            "wishlist_items_store__wm_not_null",
            "wishlist_items_currency__wm_converted",
            "store_not_empty__wm"
        ]
    );
    let swap = swap(&cols);
    for once in [
        r#"ALTER INDEX "idx_store_currency__wm" RENAME TO "idx_store_currency""#,
        r#"ALTER TABLE "wishlist_items" RENAME COLUMN "currency__wm_new" TO "currency""#,
        r#"ALTER TABLE "wishlist_items" ALTER COLUMN "currency" SET DEFAULT 'USD'::wishlist_currency"#,
        r#"DROP FUNCTION "wishlist_items_currency__wm_ok"("wishlist_items")"#,
    ] {
        assert_eq!(swap.iter().filter(|s| *s == once).count(), 1, "{once} in {swap:?}");
    }
    assert_eq!(swap.iter().filter(|s| s.starts_with("DROP TRIGGER")).count(), 1);
    let undo = undo(&[cols[0].0.clone(), cols[1].0.clone()]);
    assert!(undo.contains(&r#"ALTER TABLE "wishlist_items" DROP COLUMN IF EXISTS "currency__wm_new""#.to_string()));
}

#[test]
fn a_merged_backfill_writes_every_new_column_in_one_pass_and_checks_each_column_apart() {
    let cts: Vec<ChangeType> = merged().into_iter().map(|(c, _)| c).collect();
    let b = backfill(&cts, &facts().key, 20);
    assert!(
        b.next.contains(
            r#"SET "store__wm_new" = (store::public.wishlist_store), "currency__wm_new" = (currency::public.wishlist_currency) WHERE"#
        ),
        "{}",
        b.next
    );
    assert!(b.next.contains(r#" OR "currency__wm_new" IS DISTINCT FROM"#), "{}", b.next);
    assert_eq!(b.refused.len(), 2);
    assert!(b.refused[1].contains(r#"NOT "wishlist_items_currency__wm_ok"(wm_t)"#));
    let steps = steps_merged(&[&Statement::new(STORE, 3), &Statement::new(CURRENCY, 5)]).unwrap();
    assert_eq!(steps.len(), expand_steps(2) + 3);
    for s in &steps {
        assert!(pg_query::parse(s).is_ok(), "{s}");
    }
}
