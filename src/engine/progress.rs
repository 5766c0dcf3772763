//! What a run is working on right now, for the one moment nothing else can tell: when the
//! run is abandoned at its deadline, the future that knew is dropped, and the error must still
//! name the migration the database stopped answering in.

use std::sync::Mutex;

/// The target of the events a long run shows as it goes (a migration starting, applied, a
/// segment committing), for a front end to render (the CLI's progress lines on stderr).
pub const PROGRESS: &str = "wishlist_migrator::progress";

#[derive(Debug, Default)]
pub struct Progress {
    current: Mutex<Option<String>>,
}

impl Progress {
    pub fn working_on(&self, tag: &str) {
        *self.lock() = Some(tag.to_string());
    }

    pub fn current(&self) -> Option<String> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        // Only ever holds a tag: a panic elsewhere cannot leave it half-written.
        self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_latest_migration() {
        let progress = Progress::default();
        assert_eq!(progress.current(), None);
        progress.working_on("0000_a");
        progress.working_on("0001_b");
        assert_eq!(progress.current().as_deref(), Some("0001_b"));
    }
}
