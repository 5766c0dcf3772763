//! Where `sam build` finds the function. SAM CLI 1.170's cargo-lambda builder (aws-lambda-builders)
//! runs `cargo lambda build` in the project and copies `<cargo metadata's target_directory>/lambda/
//! <bin>/bootstrap`: `$CARGO_TARGET_DIR/lambda` when that is exported (CI caches, the Makefile),
//! else `target/lambda`. The project's CargoLambda.toml must leave the artifact there in both
//! cases. Checked with the real cargo-lambda on a stand-in crate that has the function's binary
//! name and features and the project's own CargoLambda.toml (a debug build of an empty `main`, in
//! a second; the function itself is not built again), without SAM (not a dev dependency).

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = "wishlist-migrator-lambda";

fn target_directory(project: &Path, cargo_target_dir: Option<&Path>) -> PathBuf {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["metadata", "--no-deps", "--format-version", "1"]).current_dir(project);
    with_target_dir(&mut cmd, cargo_target_dir);
    let out = cmd.output().expect("cargo metadata");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    PathBuf::from(metadata["target_directory"].as_str().unwrap())
}

fn with_target_dir(cmd: &mut Command, cargo_target_dir: Option<&Path>) {
    match cargo_target_dir {
        Some(dir) => cmd.env("CARGO_TARGET_DIR", dir),
        None => cmd.env_remove("CARGO_TARGET_DIR"),
    };
}

#[test]
fn sam_finds_the_artifact_where_cargo_lambda_puts_it_with_and_without_cargo_target_dir() {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = manifest_dir.join(".venv/bin");
    assert!(
        venv.join("cargo-lambda").exists(),
        "cargo-lambda is not installed in .venv: run scripts/bootstrap.sh"
    );
    let project = tempfile::Builder::new().prefix("wm-sam-layout-").tempdir().unwrap();
    std::fs::create_dir(project.path().join("src")).unwrap();
    std::fs::write(project.path().join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(
        project.path().join("Cargo.toml"),
        format!(
            "[package]\nname = \"{BIN}\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[features]\nvendored-openssl = []\n\n[workspace]\n"
        ),
    )
    .unwrap();
    std::fs::copy(manifest_dir.join("CargoLambda.toml"), project.path().join("CargoLambda.toml")).unwrap();
    let exported = tempfile::Builder::new().prefix("wm-sam-target-").tempdir().unwrap();
    let path = format!("{}:{}", venv.display(), std::env::var("PATH").unwrap_or_default());
    let target = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);

    for cargo_target_dir in [None, Some(exported.path())] {
        let mut build = Command::new(venv.join("cargo-lambda"));
        build
            .args(["lambda", "build", "--target", &target, "--bin", BIN])
            .current_dir(project.path())
            .env("PATH", &path);
        with_target_dir(&mut build, cargo_target_dir);
        let out = build.output().expect("cargo lambda build");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let sam_copies = target_directory(project.path(), cargo_target_dir)
            .join("lambda")
            .join(BIN)
            .join("bootstrap");
        assert!(
            sam_copies.is_file(),
            "with CARGO_TARGET_DIR {cargo_target_dir:?}, sam build copies {} but cargo lambda build did not put the function there",
            sam_copies.display()
        );
        std::fs::remove_file(&sam_copies).unwrap();
    }
}
