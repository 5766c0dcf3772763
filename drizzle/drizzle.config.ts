import { defineConfig } from 'drizzle-kit';

// Paths are relative to the repo root: run drizzle-kit from there.
// DRIZZLE_SCHEMA / DRIZZLE_OUT exist only so a past step (drizzle/history/)
// can be regenerated into a scratch folder and diffed; see drizzle/README.md.
export default defineConfig({
  dialect: 'postgresql',
  schema: process.env.DRIZZLE_SCHEMA ?? './drizzle/schema.ts',
  out: process.env.DRIZZLE_OUT ?? './migrations',
});
