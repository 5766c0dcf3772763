CREATE INDEX CONCURRENTLY "idx_wishlist_user_store_new" ON "wishlist_items" USING btree ("user_id","store_new");--> statement-breakpoint
CREATE INDEX CONCURRENTLY "idx_wishlist_user_store_priority" ON "wishlist_items" USING btree ("user_id","store_new","priority");
