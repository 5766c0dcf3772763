ALTER TABLE "wishlist_items" ALTER COLUMN "store_new" SET NOT NULL;--> statement-breakpoint
DROP TRIGGER "wishlist_items_sync_enums" ON "wishlist_items";--> statement-breakpoint
DROP FUNCTION "wishlist_items_sync_enums"();--> statement-breakpoint

-- wishlist-migrator: allow drop-column -- the contract step: here in the same deploy so the bench measures the whole change; in production it ships in the release after the API reads the new columns
ALTER TABLE "wishlist_items" DROP COLUMN "store";--> statement-breakpoint

-- wishlist-migrator: allow drop-column -- the contract step: here in the same deploy so the bench measures the whole change; in production it ships in the release after the API reads the new columns
ALTER TABLE "wishlist_items" DROP COLUMN "currency";--> statement-breakpoint

-- wishlist-migrator: allow rename-column -- the contract step: here in the same deploy so the bench measures the whole change; in production it ships in the release after the API reads the new columns
ALTER TABLE "wishlist_items" RENAME COLUMN "store_new" TO "store";--> statement-breakpoint

-- wishlist-migrator: allow rename-column -- the contract step: here in the same deploy so the bench measures the whole change; in production it ships in the release after the API reads the new columns
ALTER TABLE "wishlist_items" RENAME COLUMN "currency_new" TO "currency";--> statement-breakpoint
ALTER TABLE "wishlist_items" ALTER COLUMN "currency" SET DEFAULT 'USD'::"public"."wishlist_currency";--> statement-breakpoint
ALTER INDEX "idx_wishlist_user_store_new" RENAME TO "idx_wishlist_user_store";--> statement-breakpoint
ALTER TABLE "wishlist_items" DROP CONSTRAINT "store_new_not_null";
