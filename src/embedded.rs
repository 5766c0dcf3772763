//! The migration folder compiled into the binary by `build.rs`.

include!(concat!(env!("OUT_DIR"), "/embedded_migrations.rs"));
