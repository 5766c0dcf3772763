//! Migration folders of the repository (`migrations/`, `tests/fixtures/`): finding them, copying
//! them so a test may change them, and what their journals and files say.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::MANIFEST_DIR;

/// The project's two real migrations, in journal order.
pub const TAG_0000: &str = "0000_create_wishlist_items";
pub const TAG_0001: &str = "0001_wish_2007_enums_audit";

/// A folder of the repository, e.g. "migrations" or "tests/fixtures/engine/failing".
pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(MANIFEST_DIR).join(rel)
}

/// Copies a folder of the repo (e.g. "migrations" or
/// "tests/fixtures/engine/failing") into a new temp dir, which is returned
/// as the copy's root, so a test can modify migrations freely.
pub fn copy_fixture(rel: &str) -> tempfile::TempDir {
    let src = repo_path(rel);
    assert!(src.is_dir(), "fixture folder {} does not exist", src.display());
    let dst = tempfile::Builder::new().prefix("wm-fixture-").tempdir().expect("create temp dir");
    copy_dir(&src, dst.path()).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
    dst
}

fn copy_dir(src: &Path, dst: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let to = dst.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&to)?;
            copy_dir(&entry.path(), &to)?;
        } else {
            std::fs::copy(entry.path(), &to)?;
        }
    }
    Ok(())
}

/// The project's migrations and every history under tests/fixtures/histories, relative to the
/// repo root.
pub fn fixture_histories() -> Vec<String> {
    let names = folders_with_journal("tests/fixtures/histories", "migrations/");
    assert!(names.len() >= 6, "fixture histories missing: {names:?}");
    let histories = names.iter().map(|n| format!("tests/fixtures/histories/{n}/migrations"));
    std::iter::once("migrations".to_string()).chain(histories).collect()
}

/// The real teams' histories under tests/fixtures/real-world, relative to the repo root.
pub fn real_world_histories() -> Vec<String> {
    const REAL_WORLD: &str = "tests/fixtures/real-world";
    let names = folders_with_journal(REAL_WORLD, "");
    assert!(names.len() >= 4, "real histories missing: {names:?}");
    names.iter().map(|n| format!("{REAL_WORLD}/{n}")).collect()
}

/// The names of the folders of `root` (relative to the repo root) that hold a drizzle-kit
/// journal at `{within}meta/_journal.json`, sorted.
pub fn folders_with_journal(root: &str, within: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo_path(root))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join(format!("{within}meta/_journal.json")).is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A migration folder's journal: (tag, when) in journal order.
pub fn journal(dir: &Path) -> Vec<(String, i64)> {
    let text = std::fs::read_to_string(dir.join("meta/_journal.json")).expect("read journal");
    let json: Value = serde_json::from_str(&text).expect("journal is JSON");
    json["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| (e["tag"].as_str().unwrap().to_string(), e["when"].as_i64().unwrap()))
        .collect()
}

/// Lowercase hex SHA-256 of a file, as `sha256sum` prints it.
pub fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The ledger rows drizzle-orm would write for `dir`: (hash, created_at) per journal entry.
pub fn expected_ledger(dir: &Path) -> Vec<(String, i64)> {
    journal(dir)
        .into_iter()
        .map(|(tag, when)| (sha256_file(&dir.join(format!("{tag}.sql"))), when))
        .collect()
}

/// Writes `meta/_journal.json` of a copied folder with only the given entries (by tag), each
/// with the `when` given, in the order given.
pub fn rewrite_journal(dir: &Path, entries: &[(&str, i64)]) {
    let entries: Vec<Value> = entries
        .iter()
        .enumerate()
        .map(|(idx, (tag, when))| serde_json::json!({ "idx": idx, "version": "7", "when": when, "tag": tag, "breakpoints": true }))
        .collect();
    let journal = serde_json::json!({ "version": "7", "dialect": "postgresql", "entries": entries });
    std::fs::write(dir.join("meta/_journal.json"), serde_json::to_string_pretty(&journal).unwrap()).expect("write journal");
}
