//! Below `index.parallel_scan_min_rows` the exact index scans on the querying thread, not
//! on rayon's global pool, where the network's forward passes run: a pass queued behind
//! them lengthened `/identify`'s tail under load (BENCHMARKS.md). Its own test binary,
//! because it holds every thread of the global pool for a while.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::Duration;

use faceprint::index::{DEFAULT_PARALLEL_SCAN_MIN_ROWS, ExactIndex, FaceIndex};
use support::index::{gallery, probes};

/// Holds every thread of rayon's global pool until dropped.
struct HeldPool {
    held: Arc<(Mutex<bool>, Condvar)>,
}

impl HeldPool {
    fn hold() -> Self {
        let held = Arc::new((Mutex::new(true), Condvar::new()));
        let started = Arc::new(AtomicUsize::new(0));
        let threads = rayon::current_num_threads();
        for _ in 0..threads {
            let (held, started) = (held.clone(), started.clone());
            rayon::spawn(move || {
                started.fetch_add(1, Ordering::SeqCst);
                let (lock, wake) = &*held;
                let mut holding = lock.lock().unwrap();
                while *holding {
                    holding = wake.wait(holding).unwrap();
                }
            });
        }
        while started.load(Ordering::SeqCst) < threads {
            std::thread::yield_now();
        }
        HeldPool { held }
    }
}

impl Drop for HeldPool {
    fn drop(&mut self) {
        let (lock, wake) = &*self.held;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = false;
        wake.notify_all();
    }
}

#[test]
fn a_gallery_below_the_threshold_answers_while_every_thread_of_the_global_pool_is_busy() {
    // Larger than the 32 768 faces from which passes were split before (the threshold
    // is a million by default).
    let (n, d) = (40_000, 32);
    assert!(n < DEFAULT_PARALLEL_SCAN_MIN_ROWS);
    let g = gallery(5, n, d, 4, 0.6);
    let index = Arc::new(ExactIndex::new(d).unwrap());
    index.insert_batch(&g.items).unwrap();
    let query = probes(6, &g, 1, 0.6).remove(0);
    let want = index.search(&query, 10).unwrap();

    let held = HeldPool::hold();
    let (send, answer) = mpsc::channel();
    let searcher = Arc::clone(&index);
    std::thread::spawn(move || {
        let _ = send.send(searcher.search(&query, 10));
    });
    // The pass takes milliseconds on the querying thread; on the held global pool it
    // could not start until the pool is released (below, whatever the outcome).
    let got = answer.recv_timeout(Duration::from_secs(30));
    drop(held);
    let got = got.expect("a search answered while rayon's global pool was held");
    assert_eq!(got.unwrap(), want);
}
