-- Hot queries of the wishlist API, each with the index that must serve it.
--
-- `wishlist-migrate verify` runs EXPLAIN on each one with sequential scans switched off, inside a
-- transaction that is rolled back, and fails unless the plan uses the named index, or an index
-- whose leading key columns are exactly that index's (on a table without statistics the planner
-- cannot tell the two apart). `verify --analyze` also runs EXPLAIN (ANALYZE, BUFFERS) under the
-- normal planner and reports the timings.
--
-- Format: `-- query: <name>`, `-- index: <index>`, optionally `-- since: <tag>` (skipped on a
-- database where that migration is not applied), then one SQL statement. Literal values stand
-- in for the API's parameters.
--
-- Write each query so that its index is the cheapest path even on an empty table: its ORDER BY
-- or GROUP BY follows the index's columns. A bare equality filter on a second column costs the
-- same through every index that starts with user_id when the table has no statistics, and the
-- planner then takes whichever index is newest.

-- query: list a user's items in their order
-- index: idx_wishlist_user_sort
SELECT id, title, store, price, currency, priority, sort_order
FROM wishlist_items
WHERE user_id = 'user-1'
ORDER BY sort_order
LIMIT 50;

-- query: filter by store: a user's stores with their item counts
-- index: idx_wishlist_user_store
SELECT store, count(*)
FROM wishlist_items
WHERE user_id = 'user-1'
GROUP BY store;

-- query: a user's items by priority, highest first
-- index: idx_wishlist_user_priority
SELECT id, title, priority
FROM wishlist_items
WHERE user_id = 'user-1' AND priority >= 3
ORDER BY priority DESC;

-- query: filter a user's items by store and priority
-- index: idx_wishlist_user_store_priority
-- since: 0001_wish_2007_enums_audit
SELECT id, title, priority
FROM wishlist_items
WHERE user_id = 'user-1' AND store = 'LEGO' AND priority >= 3
ORDER BY priority DESC;

-- query: count a user's items
-- index: idx_wishlist_user_id
SELECT count(*)
FROM wishlist_items
WHERE user_id = 'user-1';
