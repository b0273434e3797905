//! The handle of one background thread (an HNSW rebuild or an exact → HNSW switch).

use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;

#[derive(Default)]
pub(crate) struct Worker(Mutex<Option<JoinHandle<()>>>);

impl Worker {
    /// Starts `work` on a named thread and keeps its handle; the error if the OS refuses.
    pub(crate) fn spawn(
        &self,
        name: &str,
        work: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<()> {
        let handle = std::thread::Builder::new().name(name.into()).spawn(work)?;
        // An earlier handle here belongs to a thread that has finished its work.
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle);
        Ok(())
    }

    /// Joins the thread until `busy()` is false. `busy` is set before `spawn` stores the
    /// handle, so an empty slot while busy means the handle is about to arrive.
    pub(crate) fn wait(&self, busy: impl Fn() -> bool) {
        loop {
            let handle = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
            match handle {
                // A panicked thread has already cleared its busy flag on unwind.
                Some(h) => drop(h.join()),
                None if !busy() => return,
                None => std::thread::yield_now(),
            }
        }
    }
}
