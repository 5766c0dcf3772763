//! Every integration test, in one binary: the harness is compiled once rather than once per
//! test file, and one PostgreSQL cluster (and one moto server) serves the whole run.
//! Each former `tests/<name>.rs` is the module `<name>` here, so `cargo test --test it drift::`
//! runs what `cargo test --test drift` used to.

mod harness;

mod concurrency;
mod configuration;
mod drift;
mod drizzle_compat;
mod failures;
mod lambda;
mod lambda_runtime;
mod migrate;
mod refusals;
mod rollback;
mod tls;
mod verify;
