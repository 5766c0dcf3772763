//! The files of a migrations folder as the check reads them: from the disk, or from a git
//! commit (`--base origin/main`) without checking it out. Only the files drizzle-kit writes are
//! kept: `.sql` and `.json`, at the top, in `meta/` or in a 1.0 migration folder.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::engine::check::CheckError;

/// Relative path (with `/`) to the file's bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Whether the check looks at a file: what drizzle-kit writes, one folder deep at most.
fn wanted(rel: &str) -> bool {
    (rel.ends_with(".sql") || rel.ends_with(".json")) && rel.matches('/').count() <= 1
}

impl Tree {
    pub fn from_dir(dir: &Path) -> Result<Self, CheckError> {
        let io = |e: std::io::Error| CheckError::Read {
            what: dir.display().to_string(),
            reason: e.to_string(),
        };
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().map_err(io)?.is_dir() {
                for inner in std::fs::read_dir(entry.path()).map_err(io)? {
                    let inner = inner.map_err(io)?;
                    let rel = format!("{name}/{}", inner.file_name().to_string_lossy());
                    if wanted(&rel) && inner.file_type().map_err(io)?.is_file() {
                        files.insert(rel, std::fs::read(inner.path()).map_err(io)?);
                    }
                }
            } else if wanted(&name) {
                files.insert(name, std::fs::read(entry.path()).map_err(io)?);
            }
        }
        Ok(Self { files })
    }

    /// The folder `dir` as it is in commit `git_ref` of the repository `dir` is in: one
    /// `git ls-tree` and one `git cat-file --batch`, however many files.
    pub fn from_git(dir: &Path, git_ref: &str) -> Result<Self, CheckError> {
        let failed = |reason: String| CheckError::Base {
            base: git_ref.to_string(),
            reason,
        };
        let listing = git(dir, &["ls-tree", "-r", "-z", git_ref, "--", "."], None).map_err(failed)?;
        let mut wanted_blobs: Vec<(String, String)> = Vec::new();
        for record in listing.split(|&b| b == 0).filter(|r| !r.is_empty()) {
            let record = String::from_utf8_lossy(record);
            // `<mode> <type> <object>\t<path>`, the path relative to `dir` (git runs in it).
            let Some((meta, path)) = record.split_once('\t') else { continue };
            let mut parts = meta.split(' ');
            let (Some(_), Some("blob"), Some(object)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            if wanted(path) {
                wanted_blobs.push((path.to_string(), object.to_string()));
            }
        }
        let input: String = wanted_blobs.iter().map(|(_, object)| format!("{object}\n")).collect();
        let out = git(dir, &["cat-file", "--batch"], Some(input.as_bytes())).map_err(failed)?;
        let mut files = BTreeMap::new();
        let mut rest = &out[..];
        for (path, _) in wanted_blobs {
            // `<object> blob <size>\n<bytes>\n`
            let header_end = rest
                .iter()
                .position(|&b| b == b'\n')
                .ok_or_else(|| failed("git cat-file ended early".into()))?;
            let header = String::from_utf8_lossy(&rest[..header_end]).into_owned();
            let size: usize = header
                .rsplit(' ')
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| failed(format!("git cat-file answered {header:?}")))?;
            let body = rest
                .get(header_end + 1..header_end + 1 + size)
                .ok_or_else(|| failed("git cat-file ended early".into()))?;
            files.insert(path, body.to_vec());
            rest = rest.get(header_end + 2 + size..).unwrap_or_default();
        }
        Ok(Self { files })
    }

    pub fn get(&self, rel: &str) -> Option<&[u8]> {
        self.files.get(rel).map(Vec::as_slice)
    }
}

fn git(dir: &Path, args: &[&str], input: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run git ({e}); --base REF needs git, or pass a folder"))?;
    // Written from a thread: git answers while it reads, and a full pipe would block both.
    let writer = input.map(|bytes| {
        let mut stdin = child.stdin.take().expect("piped");
        let bytes = bytes.to_vec();
        std::thread::spawn(move || stdin.write_all(&bytes))
    });
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_end(&mut stdout)
        .map_err(|e| e.to_string())?;
    let mut stderr = String::new();
    let _ = child.stderr.take().expect("piped").read_to_string(&mut stderr);
    let status = child.wait().map_err(|e| e.to_string())?;
    if let Some(w) = writer {
        let _ = w.join();
    }
    if !status.success() {
        return Err(format!("git {} failed: {}", args[0], stderr.trim()));
    }
    Ok(stdout)
}
