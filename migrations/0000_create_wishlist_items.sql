CREATE TABLE "wishlist_items" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" text NOT NULL,
	"title" text NOT NULL,
	"store" text NOT NULL,
	"set_number" text,
	"source_url" text,
	"image_url" text,
	"price" numeric(10, 2),
	"currency" text DEFAULT 'USD',
	"piece_count" integer,
	"release_date" timestamp with time zone,
	"tags" jsonb DEFAULT '[]'::jsonb,
	"priority" integer DEFAULT 0,
	"notes" text,
	"sort_order" integer NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "idx_wishlist_user_id" ON "wishlist_items" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "idx_wishlist_user_sort" ON "wishlist_items" USING btree ("user_id","sort_order");--> statement-breakpoint
CREATE INDEX "idx_wishlist_user_store" ON "wishlist_items" USING btree ("user_id","store");--> statement-breakpoint
CREATE INDEX "idx_wishlist_user_priority" ON "wishlist_items" USING btree ("user_id","priority");