//! One connection to PostgreSQL and the SQL this tool sends over it, without policy: connection
//! settings and TLS, the ledger and history tables, the advisory lock, the
//! opening statement that checks, locks and reads in one round trip, the catalog reader and the
//! baseline it records.

pub mod backoff;
pub mod baseline;
pub mod catalog;
pub mod connection;
pub mod history;
pub mod ledger;
pub mod lock;
pub mod opening;
pub mod points;
pub mod pooler;
pub mod table_size;
pub mod tls;
pub mod volatility;
