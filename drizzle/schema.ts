// Current schema of wishlist_items: the state after migrations/0001_wish_2007_enums_audit.
// Edit this file, then generate the next migration (see drizzle/README.md).
import { sql } from 'drizzle-orm';
import {
  check,
  index,
  integer,
  jsonb,
  numeric,
  pgEnum,
  pgTable,
  text,
  timestamp,
  uuid,
} from 'drizzle-orm/pg-core';

// WISH-2007: free-text store/currency let typos in; enums make the database reject them.
export const wishlistStore = pgEnum('wishlist_store', ['LEGO', 'Barweer', 'Cata', 'BrickLink', 'Other']);
export const wishlistCurrency = pgEnum('wishlist_currency', ['USD', 'EUR', 'GBP', 'CAD', 'AUD']);

export const wishlistItems = pgTable(
  'wishlist_items',
  {
    id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
    userId: text('user_id').notNull(),
    title: text('title').notNull(),
    store: wishlistStore('store').notNull(),
    setNumber: text('set_number'),
    sourceUrl: text('source_url'),
    imageUrl: text('image_url'),
    price: numeric('price', { precision: 10, scale: 2 }),
    currency: wishlistCurrency('currency').default('USD'),
    pieceCount: integer('piece_count'),
    releaseDate: timestamp('release_date', { withTimezone: true }),
    tags: jsonb('tags').default([]),
    priority: integer('priority').default(0),
    notes: text('notes'),
    sortOrder: integer('sort_order').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    createdBy: text('created_by'),
    updatedBy: text('updated_by'),
  },
  (t) => [
    index('idx_wishlist_user_id').on(t.userId),
    index('idx_wishlist_user_sort').on(t.userId, t.sortOrder),
    index('idx_wishlist_user_store').on(t.userId, t.store),
    index('idx_wishlist_user_priority').on(t.userId, t.priority),
    index('idx_wishlist_user_store_priority').on(t.userId, t.store, t.priority),
    check('priority_range_check', sql`${t.priority} >= 0 AND ${t.priority} <= 5`),
  ],
);
