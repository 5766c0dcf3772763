// Schema as it stood when migrations/0000_create_wishlist_items was generated.
// Kept so that step can be regenerated (and diffed) without digging through git history.
import { sql } from 'drizzle-orm';
import {
  index,
  integer,
  jsonb,
  numeric,
  pgTable,
  text,
  timestamp,
  uuid,
} from 'drizzle-orm/pg-core';

export const wishlistItems = pgTable(
  'wishlist_items',
  {
    id: uuid('id').primaryKey().default(sql`gen_random_uuid()`),
    userId: text('user_id').notNull(),
    title: text('title').notNull(),
    store: text('store').notNull(),
    setNumber: text('set_number'),
    sourceUrl: text('source_url'),
    imageUrl: text('image_url'),
    price: numeric('price', { precision: 10, scale: 2 }),
    currency: text('currency').default('USD'),
    pieceCount: integer('piece_count'),
    releaseDate: timestamp('release_date', { withTimezone: true }),
    tags: jsonb('tags').default([]),
    priority: integer('priority').default(0),
    notes: text('notes'),
    sortOrder: integer('sort_order').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('idx_wishlist_user_id').on(t.userId),
    index('idx_wishlist_user_sort').on(t.userId, t.sortOrder),
    index('idx_wishlist_user_store').on(t.userId, t.store),
    index('idx_wishlist_user_priority').on(t.userId, t.priority),
  ],
);
