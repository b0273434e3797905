//! The work a request may cause, bounded where it happens:
//! - [`PixelBudget`]: images are decoded and searched for faces only while their pixels,
//!   read from the headers, fit in a budget shared by every request in flight — memory
//!   is proportional to pixels (decoded buffer, grey copy, detector pyramid), so this
//!   bounds the server's peak memory however many requests arrive;
//! - [`Cancel`]: blocking work that a request started stops when the request is gone
//!   (timed out, or its client closed the connection): the request's future holds a
//!   [`CancelOnDrop`], and the work asks [`Cancel::is_set`] between images, pyramid
//!   levels and stages.

use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use image::{ImageDecoder, ImageReader};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Pixels per permit: the semaphore counts in units of 1,024 pixels.
const PIXELS_PER_PERMIT: u64 = 1024;

/// Pixels being decoded and analysed at once, across requests.
pub struct PixelBudget {
    permits: Arc<Semaphore>,
    total: u32,
}

impl PixelBudget {
    pub fn new(max_pixels: u64) -> PixelBudget {
        let total = u32::try_from((max_pixels / PIXELS_PER_PERMIT).max(1)).unwrap_or(u32::MAX);
        PixelBudget {
            permits: Arc::new(Semaphore::new(total as usize)),
            total,
        }
    }

    /// Wait until `pixels` fit (a request larger than the whole budget waits for all of
    /// it, so it runs alone). Hold the permit for as long as the work runs.
    pub async fn reserve(&self, pixels: u64) -> OwnedSemaphorePermit {
        let wanted = u32::try_from(pixels.div_ceil(PIXELS_PER_PERMIT))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total);
        Arc::clone(&self.permits)
            .acquire_many_owned(wanted)
            .await
            .expect("the budget's semaphore is never closed")
    }
}

/// The pixels `bytes` will decode to, from its header alone; 0 when the header cannot be
/// read or announces a side over `max_side` (decoding refuses those before allocating,
/// so they need no share of the budget).
pub fn header_pixels(bytes: &[u8], max_side: u32) -> u64 {
    std::panic::catch_unwind(|| {
        let decoder = ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .ok()
            .and_then(|r| r.into_decoder().ok());
        decoder.map_or(0, |d| match d.dimensions() {
            (w, h) if w.max(h) > max_side => 0,
            (w, h) => u64::from(w) * u64::from(h),
        })
    })
    .unwrap_or(0)
}

/// Whether the request that started some work is gone.
#[derive(Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// A guard that sets this flag when dropped.
    pub fn on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(self.clone())
    }
}

/// Sets its [`Cancel`] when dropped; a handler's future holds it while the work runs.
pub struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.0.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_wait_until_the_pixels_fit() {
        let budget = PixelBudget::new(4096 * 4096);
        let first = budget.reserve(4096 * 4096).await;
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            budget.reserve(640 * 480),
        )
        .await;
        assert!(waiting.is_err(), "a second image fitted in a full budget");
        drop(first);
        let _a = budget.reserve(640 * 480).await;
        let _b = budget.reserve(640 * 480).await;
        // Larger than the whole budget: waits for all of it, not forever.
        drop((_a, _b));
        let _all = budget.reserve(u64::MAX).await;
    }

    #[test]
    fn dropping_the_guard_cancels() {
        let cancel = Cancel::default();
        let guard = cancel.on_drop();
        assert!(!cancel.is_set());
        drop(guard);
        assert!(cancel.is_set());
    }
}
