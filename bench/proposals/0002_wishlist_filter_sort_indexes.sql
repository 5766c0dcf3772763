CREATE INDEX CONCURRENTLY "idx_wishlist_user_store_sort" ON "wishlist_items" USING btree ("user_id","store","sort_order");--> statement-breakpoint
CREATE INDEX CONCURRENTLY "idx_wishlist_user_priority_sort" ON "wishlist_items" USING btree ("user_id","priority","sort_order");--> statement-breakpoint
CREATE INDEX CONCURRENTLY "idx_wishlist_user_store_priority_sort" ON "wishlist_items" USING btree ("user_id","store","priority","sort_order");--> statement-breakpoint
DROP INDEX CONCURRENTLY "idx_wishlist_user_store";--> statement-breakpoint
DROP INDEX CONCURRENTLY "idx_wishlist_user_priority";--> statement-breakpoint
DROP INDEX CONCURRENTLY "idx_wishlist_user_store_priority";--> statement-breakpoint
DROP INDEX CONCURRENTLY "idx_wishlist_user_id";
