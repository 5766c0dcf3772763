-- wishlist-migrator: no-transaction
ALTER TABLE "wishlist_items" ADD CONSTRAINT "store_new_not_null" CHECK ("store_new" IS NOT NULL) NOT VALID;--> statement-breakpoint
ALTER TABLE "wishlist_items" VALIDATE CONSTRAINT "store_new_not_null";--> statement-breakpoint
ALTER TABLE "wishlist_items" VALIDATE CONSTRAINT "priority_range_check";
