//! What `build.rs` compiles into the binary: the migration folder, and optionally a CA bundle.

include!(concat!(env!("OUT_DIR"), "/embedded_migrations.rs"));
