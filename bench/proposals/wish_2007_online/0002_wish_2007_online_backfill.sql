-- wishlist-migrator: no-transaction
DO $$
DECLARE
	last_id uuid := '00000000-0000-0000-0000-000000000000';
	batch_end uuid;
BEGIN
	LOOP
		SELECT "id" INTO batch_end FROM "wishlist_items" WHERE "id" > last_id ORDER BY "id" OFFSET 4999 LIMIT 1;
		UPDATE "wishlist_items"
		SET "store_new" = "store"::"public"."wishlist_store", "currency_new" = "currency"::"public"."wishlist_currency"
		WHERE "id" > last_id AND (batch_end IS NULL OR "id" <= batch_end) AND "store_new" IS NULL;
		COMMIT;
		EXIT WHEN batch_end IS NULL;
		last_id := batch_end;
	END LOOP;
END
$$;
