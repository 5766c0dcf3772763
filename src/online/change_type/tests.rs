use super::*;

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
    assert_eq!(steps.len(), EXPAND_STEPS + 3);
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
    let phases: Vec<Phase> = steps
        .iter()
        .filter_map(|s| phase(&Statement::new(s.clone(), 3)).map(|p| p.0))
        .collect();
    assert_eq!(phases, [Phase::Backfill, Phase::Rebuild, Phase::Swap]);
    assert_eq!(phase(&Statement::new(steps[6].clone(), 3)).unwrap().1, ct());
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
    let r = rebuild(&ct(), &facts()).unwrap();
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
    let swap = swap(&ct(), &facts());
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
    let r = rebuild(&ct(), &nullable).unwrap();
    let Rebuild::Constraint { name, sql } = &r[0] else {
        panic!("{r:?}")
    };
    assert_eq!(name, "wishlist_items_store__wm_converted");
    assert_eq!(
        sql,
        r#"ALTER TABLE "wishlist_items" ADD CONSTRAINT "wishlist_items_store__wm_converted" CHECK (("store" IS NULL) = ("store__wm_new" IS NULL)) NOT VALID"#
    );
    assert!(matches!(&r[1], Rebuild::Validate { name, .. } if name == "wishlist_items_store__wm_converted"));
    let swap = swap(&ct(), &nullable);
    let drop_check = swap
        .iter()
        .position(|s| s.contains(r#"DROP CONSTRAINT "wishlist_items_store__wm_converted""#));
    let drop_column = swap.iter().position(|s| s.ends_with(r#"DROP COLUMN "store""#));
    assert!(drop_check.unwrap() < drop_column.unwrap(), "{swap:?}");
    assert!(!swap.iter().any(|s| s.contains("SET NOT NULL")), "{swap:?}");
}

#[test]
fn the_backfill_walks_the_key_in_order_and_skips_converted_rows() {
    let b = backfill(&ct(), &facts().key, 20);
    assert!(
        b.next
            .contains(r#"WHERE ("id") > (($2::text[])[1]::uuid) ORDER BY "id" LIMIT $1::int"#),
        "{}",
        b.next
    );
    assert!(
        b.next
            .contains(r#"AND "store__wm_new" IS DISTINCT FROM (store::public.wishlist_store)"#),
        "{}",
        b.next
    );
    assert!(b.refused.contains(r#"NOT "wishlist_items_store__wm_ok"(wm_t)"#), "{}", b.refused);
    for sql in [&b.first, &b.next, &b.fallback, &b.refused] {
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
