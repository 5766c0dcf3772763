-- Rollback of 0001_wish_2007_enums_audit (hand-written; drizzle-kit has no down migrations).
ALTER TABLE "wishlist_items" DROP CONSTRAINT "priority_range_check";--> statement-breakpoint
DROP INDEX "idx_wishlist_user_store_priority";--> statement-breakpoint
ALTER TABLE "wishlist_items" DROP COLUMN "updated_by";--> statement-breakpoint
ALTER TABLE "wishlist_items" DROP COLUMN "created_by";--> statement-breakpoint
-- The default must go first: converted along with the column it would become
-- ('USD'::wishlist_currency)::text, which still depends on the enum and blocks DROP TYPE.
ALTER TABLE "wishlist_items" ALTER COLUMN "currency" DROP DEFAULT;--> statement-breakpoint
ALTER TABLE "wishlist_items" ALTER COLUMN "currency" SET DATA TYPE text USING "currency"::text;--> statement-breakpoint
ALTER TABLE "wishlist_items" ALTER COLUMN "currency" SET DEFAULT 'USD';--> statement-breakpoint
ALTER TABLE "wishlist_items" ALTER COLUMN "store" SET DATA TYPE text USING "store"::text;--> statement-breakpoint
DROP TYPE "public"."wishlist_store";--> statement-breakpoint
DROP TYPE "public"."wishlist_currency";