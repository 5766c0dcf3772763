CREATE TYPE "public"."wishlist_currency" AS ENUM('USD', 'EUR', 'GBP', 'CAD', 'AUD');--> statement-breakpoint
CREATE TYPE "public"."wishlist_store" AS ENUM('LEGO', 'Barweer', 'Cata', 'BrickLink', 'Other');--> statement-breakpoint
ALTER TABLE "wishlist_items" ADD COLUMN "store_new" "public"."wishlist_store";--> statement-breakpoint
ALTER TABLE "wishlist_items" ADD COLUMN "currency_new" "public"."wishlist_currency";--> statement-breakpoint
ALTER TABLE "wishlist_items" ADD COLUMN "created_by" text;--> statement-breakpoint
ALTER TABLE "wishlist_items" ADD COLUMN "updated_by" text;--> statement-breakpoint
CREATE FUNCTION "wishlist_items_sync_enums"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW."store_new" := NEW."store"::"public"."wishlist_store";
	NEW."currency_new" := NEW."currency"::"public"."wishlist_currency";
	RETURN NEW;
END
$$;--> statement-breakpoint
CREATE TRIGGER "wishlist_items_sync_enums" BEFORE INSERT OR UPDATE OF "store", "currency" ON "wishlist_items" FOR EACH ROW EXECUTE FUNCTION "wishlist_items_sync_enums"();--> statement-breakpoint
ALTER TABLE "wishlist_items" ADD CONSTRAINT "priority_range_check" CHECK ("wishlist_items"."priority" >= 0 AND "wishlist_items"."priority" <= 5) NOT VALID;
