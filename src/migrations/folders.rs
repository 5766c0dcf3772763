//! drizzle-kit 1.0's layout: no journal; each migration is a folder `<YYYYMMDDHHMMSS>_<name>/`
//! holding `migration.sql` (and `snapshot.json`). What drizzle-orm 1.0's `readMigrationFiles`
//! (`migrator.js`, 1.0.0-rc.5) does with it:
//! - it lists the entries of the folder that contain `migration.sql` (`existsSync`);
//! - sorts them by name with JavaScript's `a.name.localeCompare(b.name)` ([`locale_cmp`]);
//! - takes `created_at` = `formatToMillis(name.slice(0, 14))`: `Date.UTC` of the first 14
//!   characters read as `YYYYMMDDHHMMSS` ([`folder_millis`]);
//! - hashes and splits `migration.sql` exactly as 0.x does.
//!
//! It throws when `meta/_journal.json` exists ("run drizzle-kit up").

use std::cmp::Ordering;

/// The file of a 1.0 migration folder drizzle-orm reads.
pub const MIGRATION_FILE: &str = "migration.sql";

/// The printable ASCII characters in the order ICU's root collation (what V8's
/// `String.prototype.localeCompare` uses without a locale argument) gives them at the primary
/// level, each letter standing for both cases. Read from node 20.20 (ICU 78.2):
/// `[...printableAscii].sort((a, b) => a.localeCompare(b))`.
const PRIMARY_ORDER: &[u8] = b" _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789abcdefghijklmnopqrstuvwxyz";

/// One character's collation weights: primary (which character, case folded) and tertiary
/// (lowercase before uppercase). `None` for what the collation ignores (ASCII control characters).
fn weights(c: char) -> Option<(u32, u8)> {
    if c.is_ascii_control() {
        return None;
    }
    if c.is_ascii() {
        let lower = c.to_ascii_lowercase() as u8;
        let primary = PRIMARY_ORDER
            .iter()
            .position(|&p| p == lower)
            .expect("every printable ASCII character is ranked");
        return Some((primary as u32, u8::from(c.is_ascii_uppercase())));
    }
    // Beyond ASCII this is an approximation (after every ASCII character, by code point): it
    // decides only between folders whose names agree up to that character.
    Some((PRIMARY_ORDER.len() as u32 + c as u32, 0))
}

/// `a.localeCompare(b)` as drizzle-orm 1.0 sorts folder names, exact for ASCII names:
/// the primary weights of the whole strings first (punctuation before digits before letters,
/// letters case-insensitively), then case (lowercase first). Names the collation finds equal
/// (they differ only in control characters) fall back to byte order, so the order is total.
pub fn locale_cmp(a: &str, b: &str) -> Ordering {
    let primary = |s: &str| s.chars().filter_map(weights).map(|w| w.0).collect::<Vec<_>>();
    let tertiary = |s: &str| s.chars().filter_map(weights).map(|w| w.1).collect::<Vec<_>>();
    primary(a)
        .cmp(&primary(b))
        .then_with(|| tertiary(a).cmp(&tertiary(b)))
        .then_with(|| a.cmp(b))
}

/// drizzle-orm 1.0's `created_at` for a folder: `Date.UTC(YYYY, MM - 1, DD, hh, mm, ss)` of the
/// name's first 14 characters, in milliseconds. `None` unless they are 14 ASCII digits (drizzle
/// gets `NaN` for most other names and fails inserting it). `Date.UTC`'s own rules apply: a
/// year 0–99 means 1900–1999 and out-of-range fields carry over (month 13 is next January).
pub fn folder_millis(name: &str) -> Option<i64> {
    let digits = name.as_bytes().get(..14)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let field = |from: usize, to: usize| digits[from..to].iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
    let mut year = field(0, 4);
    if year <= 99 {
        year += 1900;
    }
    let month = field(4, 6) - 1;
    let year = year + month.div_euclid(12);
    let month = month.rem_euclid(12) + 1;
    let days = days_from_civil(year, month) + field(6, 8) - 1;
    let seconds = ((days * 24 + field(8, 10)) * 60 + field(10, 12)) * 60 + field(12, 14);
    Some(seconds * 1000)
}

/// Days from 1970-01-01 to the first of `month` (1–12) of `year` (proleptic Gregorian).
fn days_from_civil(year: i64, month: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Sorts folder names as drizzle-orm 1.0 does.
pub fn sort(names: &mut [String]) {
    names.sort_by(|a, b| locale_cmp(a, b));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        sort(&mut names);
        names
    }

    #[test]
    fn ascii_order_is_node_s_localecompare() {
        // Each list is node's `[...].sort((a, b) => a.localeCompare(b))` (node 20.20, ICU 78.2).
        assert_eq!(
            sorted(&["a_b", "A", "ab", "aB", "A_a", "a-b", "Ab", "a"]),
            ["a", "A", "A_a", "a_b", "a-b", "ab", "aB", "Ab"]
        );
        // The printable ASCII characters one by one.
        let all: Vec<String> = (32u8..127).map(|b| (b as char).to_string()).collect();
        let mut shuffled = all.clone();
        shuffled.reverse();
        sort(&mut shuffled);
        assert_eq!(
            shuffled.concat(),
            " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789aAbBcCdDeEfFgGhHiIjJkKlLmMnNoOpPqQrRsStTuUvVwWxXyYzZ"
        );
        assert_eq!(locale_cmp("a-c", "ab"), Ordering::Less);
        // Control characters are ignored ("x\u{1}y" and "xy" are equal to node); byte order decides.
        assert_eq!(locale_cmp("x\u{1}z", "xy"), Ordering::Greater);
        assert_eq!(locale_cmp("x\u{1}y", "xy"), "x\u{1}y".cmp("xy"));
    }

    #[test]
    fn ties_within_one_second_sort_as_drizzle_does_not_by_bytes() {
        // Byte order would put "Z" (0x5a) and "_" (0x5f) before lowercase letters; drizzle-orm
        // 1.0 applies these in this order.
        let names = [
            "20250101120000_Zebra",
            "20250101120000_apple",
            "20250101120000-dash",
            "20250101120000_apple_2",
            "20250101120000_Apple",
            "20250101120000_apple-2",
            "20241231235959_last_year",
            "20250101120001_next_second",
        ];
        assert_eq!(
            sorted(&names),
            [
                "20241231235959_last_year",
                "20250101120000_apple",
                "20250101120000_Apple",
                "20250101120000_apple_2",
                "20250101120000_apple-2",
                "20250101120000_Zebra",
                "20250101120000-dash",
                "20250101120001_next_second",
            ]
        );
        let mut bytes: Vec<&str> = names.to_vec();
        bytes.sort();
        assert_ne!(bytes, sorted(&names));
    }

    #[test]
    fn created_at_is_the_name_s_first_14_digits_as_utc_milliseconds() {
        // Date.UTC(2025, 0, 1, 12, 0, 0)
        assert_eq!(folder_millis("20250101120000_init"), Some(1_735_732_800_000));
        assert_eq!(folder_millis("20240229235959_leap"), Some(1_709_251_199_000));
        assert_eq!(folder_millis("19700101000000"), Some(0));
        // Date.UTC's carries: month 13 is January of the next year, day 32 the next month.
        assert_eq!(folder_millis("20241301000000_x"), folder_millis("20250101000000_x"));
        assert_eq!(folder_millis("20250132000000_x"), folder_millis("20250201000000_x"));
        // Date.UTC(50, ...) is 1950.
        assert_eq!(folder_millis("00500101000000_x"), folder_millis("19500101000000_x"));
    }

    #[test]
    fn names_without_14_leading_digits_have_no_created_at() {
        for name in [
            "0000_init",
            "2025010112000_short",
            "2025-01-01T120000_x",
            "",
            "_init",
            "２０２５０１０１１２００００",
        ] {
            assert_eq!(folder_millis(name), None, "{name:?}");
        }
    }

    #[test]
    fn four_hundred_names_sort_as_node_sorted_them() {
        // testdata/locale_order.mjs: node's localeCompare order of punctuation, digits and both
        // cases after one of three timestamps (ties within one second included).
        let expected: Vec<String> = include_str!("testdata/locale_order.jsonl")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(expected.len(), 400);
        let mut names = expected.clone();
        names.reverse();
        names.rotate_left(137);
        sort(&mut names);
        assert_eq!(names, expected);
    }
}
