//! The server's periodic trim (`faceprint::server::memory`) hands freed heap memory back
//! to the system. Alone in its own test binary: RSS is the whole process's.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn a_trim_returns_the_heap_pages_a_burst_freed() {
    fn rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .expect("VmRSS");
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
    // 32 MiB in 100 KiB buffers (heap, under glibc's mmap threshold), written so the
    // pages are resident; the last one stays, so free() cannot give back the heap's top.
    let mut burst: Vec<Vec<u8>> = (0..320)
        .map(|i| vec![1 + (i % 200) as u8; 100 * 1024])
        .collect();
    let last = burst.pop().expect("a block");
    drop(burst);
    let freed = rss_kib();
    faceprint::server::memory::trim();
    let trimmed = rss_kib();
    assert_eq!(last[0], 1 + (319 % 200) as u8);
    assert!(
        freed.saturating_sub(trimmed) > 16 * 1024,
        "RSS {freed} KiB after the burst was freed, {trimmed} KiB after the trim"
    );
}
