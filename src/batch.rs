//! Queries that arrive together share one scan: the exact index's pass over a gallery
//! (`crate::index`), the model's forward pass (`crate::model::Embedder`).
//!
//! One scan runs at a time. A query that finds no scan running starts one at once, with
//! every query already waiting (so an idle index adds no latency); queries that arrive
//! while a scan runs wait for it to end, and the first of them to wake scans for all of
//! them. Under load the batch therefore grows to the number of queries in flight,
//! which is what the index's blocked scan needs to pay the gallery's memory traffic once
//! per batch, and what the network needs to run its layers on several images at once.
//!
//! A scan of a busy index (one that scanned within the last [`IDLE_AFTER`]) first waits
//! for the batch to fill, so arrivals spread over a scan's length are not split into
//! many small batches — to as many queries as the last batch held (what gathered over
//! one scan; with `n` clients each waiting for its answer before it asks again, `n`), for
//! at most as long as the last scan took, and never longer than [`BatchConfig::window`].
//! That holds for the first query of a wave too, not only for queries that arrive during
//! a scan: the server's queries come in waves, one per forward pass of the network, whose
//! callers reach the index over a few milliseconds while the next pass holds the cores;
//! a wave's first query used to find the index between scans and scan alone, a full
//! pass over a million faces for one query, before the rest of its wave. Filling
//! to [`BatchConfig::max`] instead made every such batch wait out its whole wait whenever
//! fewer clients than that were asking. Waiting one scan's length at most bounds what a
//! query can lose (its latency at most doubles) by what the batch can win (one scan
//! instead of two): at a million faces a scan reads 128 MB and takes milliseconds, so batches grow
//! and throughput rises; at a thousand a scan takes microseconds and so does the wait.
//! A batch of one asks for no company, so a lone client never waits; an index idle for
//! [`IDLE_AFTER`] never waits.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How queries are grouped.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct BatchConfig {
    /// Most queries in one scan (≥ 1).
    pub max: usize,
    /// Longest a busy index waits for a batch to fill (and never longer than the last
    /// scan took); zero: never waits.
    pub window: Duration,
}

/// One waiting query.
pub(crate) struct Job<Q> {
    ticket: u64,
    pub query: Q,
}

impl<Q> Job<Q> {
    /// A job outside any batcher (a query scanned on its own).
    pub(crate) fn new(query: Q) -> Self {
        Job { ticket: 0, query }
    }
}

/// Gathers concurrent queries of type `Q` into batches answered with `A`.
pub(crate) struct Batcher<Q, A> {
    config: BatchConfig,
    queue: Mutex<Queue<Q, A>>,
    wake: Condvar,
}

struct Queue<Q, A> {
    next_ticket: u64,
    waiting: VecDeque<Job<Q>>,
    done: HashMap<u64, A>,
    scanning: bool,
    last_end: Option<Instant>,
    /// How long the last scan took.
    last_scan: Duration,
    /// Queries the last scan answered.
    last_size: usize,
    /// A leader is waiting for its batch to fill ([`Batcher::fill_window`]).
    filling: bool,
}

impl<Q: Clone, A> Batcher<Q, A> {
    pub(crate) fn new(config: BatchConfig) -> Self {
        Self {
            config: BatchConfig {
                max: config.max.max(1),
                ..config
            },
            queue: Mutex::new(Queue {
                next_ticket: 0,
                waiting: VecDeque::new(),
                done: HashMap::new(),
                scanning: false,
                last_end: None,
                last_scan: Duration::ZERO,
                last_size: 0,
                filling: false,
            }),
            wake: Condvar::new(),
        }
    }

    /// Answers `query`, scanning with `run` when this thread's turn comes to lead a
    /// batch; `run` gets the batch (this query among them) and returns one answer each,
    /// in order.
    pub(crate) fn submit(&self, query: Q, run: impl Fn(&[Job<Q>]) -> Vec<A>) -> A {
        let mut q = self.lock();
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.waiting.push_back(Job {
            ticket,
            query: query.clone(),
        });
        if q.filling && q.waiting.len() >= self.fill_to(&q) {
            // The leader waiting for its batch to fill can go now.
            self.wake.notify_all();
        }
        loop {
            if let Some(answer) = q.done.remove(&ticket) {
                return answer;
            }
            if q.scanning {
                q = self.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            q.scanning = true;
            q = self.fill_window(q);
            let batch = self.take_batch(&mut q, ticket, &query);
            q.last_size = batch.len();
            drop(q);
            let mut guard = EndScan {
                batcher: self,
                armed: true,
            };
            let started = Instant::now();
            let answers = run(&batch);
            q = self.lock();
            q.last_scan = started.elapsed();
            for (job, answer) in batch.iter().zip(answers) {
                q.done.insert(job.ticket, answer);
            }
            end_scan(&mut q, &self.wake);
            guard.armed = false;
        }
    }

    /// While the index is busy ([`fill_wait`]), waits for as many queries as the last batch
    /// held ([`Self::fill_to`]) up to the window or the last scan's duration, whichever is
    /// shorter.
    fn fill_window<'a>(
        &'a self,
        mut q: MutexGuard<'a, Queue<Q, A>>,
    ) -> MutexGuard<'a, Queue<Q, A>> {
        let since_last_end = q.last_end.map(|t| t.elapsed());
        let Some(wait) = fill_wait(self.config.window, q.last_scan, since_last_end) else {
            return q;
        };
        let deadline = Instant::now() + wait;
        q.filling = true;
        while q.waiting.len() < self.fill_to(&q) {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            q = self
                .wake
                .wait_timeout(q, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        q.filling = false;
        q
    }

    /// The batch a busy index waits for: as many queries as the last one held, at least
    /// one and at most `max`.
    fn fill_to(&self, q: &Queue<Q, A>) -> usize {
        q.last_size.clamp(1, self.config.max)
    }

    /// This thread's own job plus the oldest others, up to `max`. The own job is made
    /// again if a failed scan took it away.
    fn take_batch(&self, q: &mut Queue<Q, A>, ticket: u64, query: &Q) -> Vec<Job<Q>> {
        let own = match q.waiting.iter().position(|j| j.ticket == ticket) {
            Some(i) => q.waiting.remove(i),
            None => None,
        }
        .unwrap_or_else(|| Job {
            ticket,
            query: query.clone(),
        });
        let others = q.waiting.len().min(self.config.max - 1);
        let mut batch = Vec::with_capacity(others + 1);
        batch.push(own);
        batch.extend(q.waiting.drain(..others));
        batch
    }

    fn lock(&self) -> MutexGuard<'_, Queue<Q, A>> {
        // Every change to the queue completes under the lock; a panic cannot tear it.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How long since its last scan an index counts as busy ([`fill_wait`]): far longer than
/// the gap between two waves of queries (a forward pass of the network, tens of
/// milliseconds), far shorter than a pause between users.
const IDLE_AFTER: Duration = Duration::from_secs(1);

/// How long a scan waits at most for more queries before it starts: the window or the
/// last scan's duration, whichever is shorter, and only while the index is busy (its
/// last scan ended less than [`IDLE_AFTER`] ago); `None` when it starts at once.
fn fill_wait(
    window: Duration,
    last_scan: Duration,
    since_last_end: Option<Duration>,
) -> Option<Duration> {
    let wait = window.min(last_scan);
    match since_last_end {
        Some(since) if !wait.is_zero() && since < IDLE_AFTER => Some(wait),
        _ => None,
    }
}

fn end_scan<Q, A>(q: &mut Queue<Q, A>, wake: &Condvar) {
    q.scanning = false;
    q.last_end = Some(Instant::now());
    wake.notify_all();
}

/// Ends a scan when `run` panics, so the next waiter can lead (its job is made again).
struct EndScan<'a, Q: Clone, A> {
    batcher: &'a Batcher<Q, A>,
    armed: bool,
}

impl<Q: Clone, A> Drop for EndScan<'_, Q, A> {
    fn drop(&mut self) {
        if self.armed {
            end_scan(&mut self.batcher.lock(), &self.batcher.wake);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    impl<Q, A> Batcher<Q, A> {
        fn waiting(&self) -> usize {
            self.queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .waiting
                .len()
        }
    }

    #[test]
    fn queries_arriving_during_a_scan_share_the_next_one_and_get_their_own_answers() {
        let batcher: Batcher<u32, u32> = Batcher::new(BatchConfig {
            max: 64,
            window: Duration::ZERO,
        });
        let (release, gate) = mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        let sizes = Mutex::new(Vec::new());
        let run = |jobs: &[Job<u32>]| {
            sizes.lock().unwrap().push(jobs.len());
            if jobs[0].query == 0 {
                // The first scan holds on until every other query is waiting.
                gate.lock().unwrap().recv().unwrap();
            }
            jobs.iter().map(|j| j.query * 10).collect()
        };
        let (batcher, run) = (&batcher, &run);
        std::thread::scope(|s| {
            let first = s.spawn(move || batcher.submit(0, run));
            while sizes.lock().unwrap().is_empty() {
                std::thread::yield_now();
            }
            let others: Vec<_> = (1..8u32)
                .map(|i| s.spawn(move || (i, batcher.submit(i, run))))
                .collect();
            while batcher.waiting() < 7 {
                std::thread::yield_now();
            }
            release.send(()).unwrap();
            assert_eq!(first.join().unwrap(), 0);
            for h in others {
                let (i, answer) = h.join().unwrap();
                assert_eq!(answer, i * 10);
            }
        });
        assert_eq!(*sizes.lock().unwrap(), vec![1, 7]);
    }

    #[test]
    fn a_failed_scan_lets_the_other_queries_of_its_batch_run_again() {
        let batcher: Batcher<u32, u32> = Batcher::new(BatchConfig {
            max: 4,
            window: Duration::from_millis(1),
        });
        let failed = std::sync::atomic::AtomicBool::new(false);
        let run = |jobs: &[Job<u32>]| {
            if !failed.swap(true, std::sync::atomic::Ordering::SeqCst) {
                panic!("first scan fails");
            }
            jobs.iter().map(|j| j.query + 1).collect()
        };
        let first =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| batcher.submit(1, run)));
        assert!(first.is_err());
        assert_eq!(batcher.submit(2, run), 3);
    }

    /// A batcher of a minute's window as after a batch of two queries whose scan took
    /// `scan` and ended `ago`.
    fn after_two(scan: Duration, ago: Duration) -> Batcher<u32, u32> {
        let batcher = Batcher::new(BatchConfig {
            max: 64,
            window: Duration::from_secs(60),
        });
        {
            let mut q = batcher.lock();
            q.last_scan = scan;
            q.last_end = Instant::now().checked_sub(ago);
            q.last_size = 2;
        }
        batcher
    }

    #[test]
    fn a_busy_index_waits_for_as_many_queries_as_its_last_batch_held_and_no_more() {
        // As after a batch of two whose scan took a minute and just ended.
        let batcher = after_two(Duration::from_secs(60), Duration::ZERO);
        let sizes = Mutex::new(Vec::new());
        let run = |jobs: &[Job<u32>]| {
            sizes.lock().unwrap().push(jobs.len());
            jobs.iter().map(|j| j.query * 10).collect()
        };
        let started = Instant::now();
        let (batcher, run) = (&batcher, &run);
        std::thread::scope(|s| {
            let answers: Vec<_> = (1..=2u32)
                .map(|i| s.spawn(move || (i, batcher.submit(i, run))))
                .collect();
            for h in answers {
                let (i, answer) = h.join().unwrap();
                assert_eq!(answer, i * 10);
            }
        });
        // The first query waited for the second (one batch), and not for a full batch of
        // 64: that wait would have lasted the minute.
        assert_eq!(*sizes.lock().unwrap(), vec![2]);
        assert!(started.elapsed() < Duration::from_secs(30));
        assert_eq!(batcher.lock().last_size, 2);
    }

    #[test]
    fn the_first_query_of_a_wave_waits_for_the_rest_though_the_last_scan_ended_before_it() {
        // A batch of two whose 400 ms scan ended 500 ms ago: longer ago than the scan
        // took (the gap between two waves), within IDLE_AFTER.
        let batcher = after_two(Duration::from_millis(400), Duration::from_millis(500));
        let sizes = Mutex::new(Vec::new());
        let run = |jobs: &[Job<u32>]| {
            sizes.lock().unwrap().push(jobs.len());
            jobs.iter().map(|j| j.query * 10).collect()
        };
        let (batcher, run) = (&batcher, &run);
        std::thread::scope(|s| {
            let first = s.spawn(move || batcher.submit(1, run));
            // The second query comes once the first waits for company (or after 5 s, if
            // it never does: then the first has scanned alone).
            let asked = Instant::now();
            while !batcher.lock().filling && asked.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(1));
            }
            let second = s.spawn(move || batcher.submit(2, run));
            assert_eq!(first.join().unwrap(), 10);
            assert_eq!(second.join().unwrap(), 20);
        });
        assert_eq!(*sizes.lock().unwrap(), vec![2]);
    }

    #[test]
    fn a_busy_index_waits_no_longer_than_its_last_scan_took() {
        let us = Duration::from_micros;
        let minute = Duration::from_secs(60);
        // A window of a minute, a scan of 5 µs that just ended: wait 5 µs, not a minute.
        assert_eq!(fill_wait(minute, us(5), Some(us(1))), Some(us(5)));
        // A short window caps the wait.
        assert_eq!(
            fill_wait(us(2000), us(5000), Some(us(1000))),
            Some(us(2000))
        );
        // Between two waves of queries (the last scan ended longer ago than it took, but
        // within IDLE_AFTER): the same wait.
        assert_eq!(fill_wait(minute, us(5), Some(us(10))), Some(us(5)));
        assert_eq!(
            fill_wait(minute, us(5), Some(IDLE_AFTER - us(1))),
            Some(us(5))
        );
        // Idle (the last scan ended IDLE_AFTER ago or more), no scan yet, or no window:
        // start at once.
        assert_eq!(fill_wait(minute, us(5), Some(IDLE_AFTER)), None);
        assert_eq!(fill_wait(minute, us(5), None), None);
        assert_eq!(fill_wait(Duration::ZERO, us(5), Some(us(1))), None);
        // And the batcher still answers each query with its own answer.
        let batcher: Batcher<u32, u32> = Batcher::new(BatchConfig {
            max: 64,
            window: minute,
        });
        let run = |jobs: &[Job<u32>]| jobs.iter().map(|j| j.query).collect();
        assert_eq!(batcher.submit(1, run), 1);
        assert_eq!(batcher.submit(2, run), 2);
    }
}
