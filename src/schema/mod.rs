//! What the schema should be and what it is: drizzle-kit snapshots, the comparison with the live
//! catalog (drift), and the verification checks built on it.

pub mod drift;
pub mod model_ddl;
pub mod snapshot;
pub mod snapshot_v1;
pub mod verify;
