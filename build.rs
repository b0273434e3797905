//! Rebuild when a migration changes: `sqlx::migrate!` embeds `migrations/` at compile time.
//!
//! Also sets `cfg(faceprint_postgres)` when `FACEPRINT_TEST_DATABASE_URL` names a database
//! at build time: the tests that need PostgreSQL are marked ignored (with the reason)
//! without it, so a run without PostgreSQL says how many did not run instead of counting
//! them as passed.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-env-changed=FACEPRINT_TEST_DATABASE_URL");
    println!("cargo::rustc-check-cfg=cfg(faceprint_postgres)");
    if std::env::var("FACEPRINT_TEST_DATABASE_URL").is_ok_and(|url| !url.trim().is_empty()) {
        println!("cargo:rustc-cfg=faceprint_postgres");
    }
}
