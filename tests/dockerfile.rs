//! The Dockerfile, checked without a Docker engine by `scripts/check-dockerfile.sh`: its
//! COPY sources exist, and the runtime stage's command and environment serve until its
//! HEALTHCHECK passes (run here with the binary this test build made).

use std::path::Path;
use std::process::{Command, Output};

fn check(root: &Path, args: &[&str]) -> Output {
    Command::new("bash")
        .arg(root.join("scripts/check-dockerfile.sh"))
        .args(args)
        .env("FACEPRINT_BIN", env!("CARGO_BIN_EXE_faceprint-server"))
        .env("RUST_LOG", "warn")
        .output()
        .expect("run scripts/check-dockerfile.sh")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_runtime_stage_serves_until_its_healthcheck_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = check(root, &[]);
    assert!(output.status.success(), "{}", text(&output));
    let shown = text(&output);
    assert!(shown.contains("ok: HEALTHCHECK"), "{shown}");
    assert!(shown.contains("on the /data volume"), "{shown}");
}

#[test]
fn a_copy_of_a_missing_path_fails_the_check() {
    let root = tempfile::tempdir().expect("temporary directory");
    std::fs::create_dir(root.path().join("scripts")).expect("mkdir");
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(
        here.join("scripts/check-dockerfile.sh"),
        root.path().join("scripts/check-dockerfile.sh"),
    )
    .expect("copy script");
    let dockerfile = std::fs::read_to_string(here.join("Dockerfile")).expect("Dockerfile");
    std::fs::write(root.path().join("Dockerfile"), dockerfile).expect("write Dockerfile");
    // Nothing else: Cargo.toml, src/, models/ … are all missing from this context.
    let output = check(root.path(), &["--paths-only"]);
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("COPY models: no such path"),
        "{}",
        text(&output)
    );
}
