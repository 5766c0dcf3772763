//! Embeds the migration folder in the binaries: a deployed artifact's migration set is fixed per
//! build. `EMBED_MIGRATIONS_DIR` embeds another folder (benchmarks embed a long history).
//! Also embeds `certs/rds-ca-bundle.pem` (or `EMBED_CA_BUNDLE`) when present, for
//! `DB_CA_BUNDLE=embedded`: SAM packages only the `bootstrap` binary, so the CA travels inside it.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=EMBED_MIGRATIONS_DIR");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let dir = std::env::var("EMBED_MIGRATIONS_DIR")
        .map(|d| manifest.join(d))
        .unwrap_or_else(|_| manifest.join("migrations"));
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files = Vec::new();
    if dir.is_dir() {
        collect(&dir, &dir, &mut files);
    }
    files.sort();
    let mut out = String::from(
        "/// Files of the embedded migration folder: (path relative to the folder, bytes).\npub static FILES: &[(&str, &[u8])] = &[\n",
    );
    for (rel, abs) in &files {
        out.push_str(&format!("    ({rel:?}, include_bytes!({abs:?})),\n"));
    }
    out.push_str("];\n");
    println!("cargo:rerun-if-env-changed=EMBED_CA_BUNDLE");
    let bundle = std::env::var("EMBED_CA_BUNDLE")
        .map(|p| manifest.join(p))
        .unwrap_or_else(|_| manifest.join("certs/rds-ca-bundle.pem"));
    // A path that does not exist counts as changed on every build, which would rebuild the crate
    // each time: watch the folder the bundle would appear in instead.
    let watched = if bundle.exists() {
        bundle.clone()
    } else {
        bundle.parent().map_or(manifest.clone(), Path::to_path_buf)
    };
    println!("cargo:rerun-if-changed={}", watched.display());
    out.push_str("/// The CA bundle built in for `DB_CA_BUNDLE=embedded`, if the build had one.\n");
    if bundle.is_file() {
        out.push_str(&format!(
            "pub static CA_BUNDLE: Option<&[u8]> = Some(include_bytes!({:?}));\n",
            bundle.display().to_string()
        ));
    } else {
        out.push_str("pub static CA_BUNDLE: Option<&[u8]> = None;\n");
    }
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("embedded_migrations.rs");
    std::fs::write(dest, out).unwrap();
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, String)>) {
    println!("cargo:rerun-if-changed={}", dir.display());
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            println!("cargo:rerun-if-changed={}", path.display());
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            files.push((rel, path.display().to_string()));
        }
    }
}
