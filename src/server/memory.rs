//! Memory handed back to the system after a burst of requests (the allocator's part on glibc
//! only; the engine's buffer pool everywhere).
//!
//! glibc keeps the memory freed inside its heap arenas (one per thread that ever
//! allocated) and returns it only from the top of each heap. The server's buffers of a
//! few hundred KiB to a few MiB (decoded images, im2col patches, feature maps) come and
//! go from those arenas, so after a burst the process stays at its peak: with
//! `scripts/soak.sh` (6 clients, 90 s, the default model) RSS rose from a 104 MiB
//! warmed-up baseline to 138 MiB and stayed there once the load was gone.
//!
//! Two remedies were measured (BENCHMARKS.md, "Hostile clients"). Fixing glibc's `mmap`
//! threshold at 128 KiB (so large buffers are mapped and unmapped per use) brought memory
//! back, but cost a third of `/identify`'s throughput (65–74 against 105–109 requests/s).
//! What is kept: every [`TRIM_EVERY`], `malloc_trim(0)` returns the arenas' free pages,
//! which costs the request path nothing. That still left +23% after a 30-minute soak:
//! what a trim cannot return are pages kept partly in use across many arenas. Limiting
//! glibc to [`ARENAS`] arenas ([`limit_arenas`], at start-up) brought memory back to its
//! baseline (−3%) at the same request rate.

use std::time::Duration;

/// Heap arenas glibc may create (`M_ARENA_MAX`; its default is eight per core). Every
/// thread that allocates under contention gets an arena of its own, keeps it, and leaves
/// fragments in it that a trim cannot return; the server's blocking pool starts and
/// stops many threads. With two arenas `scripts/soak.sh` held RSS at 82–89 MiB under
/// load instead of 111–116 MiB, at the same request rate (BENCHMARKS.md, "Hostile
/// clients").
pub const ARENAS: i32 = 2;

/// Limits glibc to [`ARENAS`] heap arenas unless `MALLOC_ARENA_MAX` says otherwise
/// (a no-op elsewhere). Call it before starting threads.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt takes no pointers; it only sets an allocator parameter.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
    }
}

/// How often free memory is handed back.
pub const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Frees the engine's kept activation buffers ([`crate::nn::recycle`]) and returns the
/// allocator's free pages to the system (glibc's `malloc_trim`; elsewhere only the
/// former).
pub fn trim() {
    crate::nn::recycle::clear();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers; it locks each arena while it trims it.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Trims every [`TRIM_EVERY`] until dropped (on a blocking thread: a trim walks every
/// arena). Runs on every target: where there is no `malloc_trim` it still empties the
/// engine's buffer pool.
pub async fn trim_periodically() {
    let mut tick = tokio::time::interval(TRIM_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tick.tick().await; // the first tick is immediate
    loop {
        tick.tick().await;
        let _ = tokio::task::spawn_blocking(trim).await;
    }
}
