// Writes locale_order.jsonl: 400 folder-like names (three timestamps, then up to five
// characters from punctuation, digits and both cases), sorted as drizzle-orm 1.0 sorts
// migration folders: a.localeCompare(b). Deterministic (an LCG), so the file is reproducible:
//   node src/migrations/testdata/locale_order.mjs > src/migrations/testdata/locale_order.jsonl
let seed = 13;
const rnd = (n) => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed % n;
};
const chars = " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789aAbBzZyYmM";
const names = new Set();
while (names.size < 400) {
  const ts = ['20250101120000', '20250101120001', '20241231235959'][rnd(3)];
  let rest = '';
  const len = rnd(6);
  for (let i = 0; i < len; i++) rest += chars[rnd(chars.length)];
  names.add(ts + rest);
}
const sorted = [...names].sort((a, b) => a.localeCompare(b));
process.stdout.write(sorted.map((s) => JSON.stringify(s)).join('\n') + '\n');
