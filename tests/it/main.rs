//! Every integration test, in one binary: the harness is compiled once, not once per test
//! file, and one PostgreSQL cluster (and one moto server) serves the whole run. One module per
//! area; `cargo test --test it drift::` runs one of them.

mod harness;

mod backup;
mod check;
mod concurrency;
mod configuration;
mod drift;
mod drift_baseline;
mod drift_model;
mod drizzle1;
mod drizzle1_snapshots;
mod drizzle_compat;
mod envs;
mod failures;
mod faults;
mod fleet;
mod flights;
mod fuzz;
mod gate;
mod history;
mod kill;
mod lambda;
mod lambda_build;
mod lambda_emulator;
mod lambda_faults;
mod lambda_online;
mod lambda_runtime;
mod lambda_target;
mod lint;
mod lint_fresh_build;
mod malformed;
mod memory;
mod metrics;
mod migrate;
mod online;
mod online_add;
mod online_change;
mod online_give_way;
mod pitr;
mod pooler;
mod real_histories;
mod refusals;
mod resume;
mod rollback;
mod tls;
mod truthful;
mod verify;
mod workflows;
mod workflows_online;
