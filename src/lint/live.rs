//! What a live table adds to a finding: its estimated rows and size, how long writers would wait
//! for the statement, and whether that is long enough to refuse it. Pure: the sizes are read by
//! `db::table_size`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::db::table_size::TableSize;
use crate::lint::rule::Cost;

/// Rows above which a scan or rewrite of a table is refused unless waived.
pub const DEFAULT_LARGE_TABLE_ROWS: u64 = 100_000;

/// Throughputs measured on the benchmark machine (`make bench`, part 8, with the figures in
/// BENCHMARKS.md): the bytes of a table (heap, indexes and TOAST: `pg_total_relation_size`)
/// a full scan under a lock, and a full rewrite with its indexes, get through per second. A
/// production instance differs; the estimate is an order of magnitude, said as such.
pub const SCAN_BYTES_PER_SECOND: f64 = 200.0 * 1024.0 * 1024.0;
pub const REWRITE_BYTES_PER_SECOND: f64 = 45.0 * 1024.0 * 1024.0;

/// The live tables the linted statements touch, and the threshold; absent without a database.
#[derive(Debug, Clone)]
pub struct LiveTables {
    pub sizes: BTreeMap<String, TableSize>,
    pub large_table_rows: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveEstimate {
    pub estimated_rows: u64,
    pub total_bytes: u64,
    /// How long writers to the table would wait, estimated from its size.
    #[serde(serialize_with = "crate::lint::live::millis")]
    pub blocks_writes_for: Duration,
    pub large: bool,
}

pub fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// The estimate for a statement of this cost on this table.
pub fn estimate(size: &TableSize, cost: Cost, large_table_rows: u64) -> Option<LiveEstimate> {
    let throughput = match cost {
        Cost::Scan => SCAN_BYTES_PER_SECOND,
        Cost::Rewrite => REWRITE_BYTES_PER_SECOND,
        Cost::Breaking | Cost::Procedure => return None,
    };
    Some(LiveEstimate {
        estimated_rows: size.estimated_rows,
        total_bytes: size.total_bytes,
        blocks_writes_for: Duration::from_secs_f64(size.total_bytes as f64 / throughput),
        large: size.estimated_rows >= large_table_rows,
    })
}

pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(rows: u64, bytes: u64) -> TableSize {
        TableSize {
            estimated_rows: rows,
            total_bytes: bytes,
        }
    }

    #[test]
    fn a_large_table_is_one_at_or_over_the_threshold() {
        let big = estimate(&size(100_000, 50 << 20), Cost::Scan, 100_000).unwrap();
        assert!(big.large);
        let small = estimate(&size(99_999, 50 << 20), Cost::Scan, 100_000).unwrap();
        assert!(!small.large);
    }

    #[test]
    fn a_rewrite_is_estimated_slower_than_a_scan_of_the_same_table() {
        let t = size(1_000_000, 200 << 20);
        let scan = estimate(&t, Cost::Scan, DEFAULT_LARGE_TABLE_ROWS).unwrap();
        let rewrite = estimate(&t, Cost::Rewrite, DEFAULT_LARGE_TABLE_ROWS).unwrap();
        assert!(rewrite.blocks_writes_for > scan.blocks_writes_for);
        assert_eq!(scan.blocks_writes_for, Duration::from_secs(1));
    }

    #[test]
    fn breaking_rules_get_no_estimate() {
        assert!(estimate(&size(1, 1), Cost::Breaking, 1).is_none());
    }

    #[test]
    fn bytes_read_as_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 << 20), "3.0 MB");
    }
}
