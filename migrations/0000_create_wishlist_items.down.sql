-- Rollback of 0000_create_wishlist_items (hand-written; drizzle-kit has no down migrations).
-- Dropping the table drops its indexes with it.
DROP TABLE "wishlist_items";