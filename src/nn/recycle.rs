//! Large activation buffers handed back when a pass is done with them, and handed out
//! again to the next layer that needs one of about the same size.
//!
//! An inference pass allocates every layer's output afresh (a ResNet-14 at batch 16: maps
//! of 22 MB at its first stage) and frees its input. glibc handed such blocks out as
//! fresh pages (the process took 350 000 page faults in 12 s of batch-16 inference on a
//! 2-core AVX2 EPYC), so each output paid a page fault per 4 KiB, the kernel's zeroing
//! of each page, and then the layer's own zero fill (`par_zeros`, 8 % of the samples).
//! A buffer from here is already mapped and is not zeroed by [`take`]: only code that
//! writes every value it takes takes one that way.
//!
//! Who gives back: [`Sequential::infer`](super::sequential::Sequential::infer) each
//! spent intermediate output, [`Residual`](super::residual::Residual) its shortcut's
//! output after the sum, and a convolution's training forward the input it cached in
//! the step before (its output, taken next, is mostly of the same size: in runs of the
//! ResNet-14's training figure alone, its peak memory fell from 563–567 to 527–530 MB,
//! BENCHMARKS.md). Who takes: the convolution's output and input gradient (zeroed),
//! batch norm's output (in training unwritten, [`take_uninit`]). A training forward empties the pool first, and the backward
//! gives nothing back: buffers kept through a step (its spent gradients, say) raised the
//! ResNet-14's peak memory from 533 to 596 MB. At most [`KEEP`] buffers and
//! [`KEEP_BYTES`] are held; the server empties the pool with its periodic memory trim
//! ([`clear`]).

use super::Tensor;
use super::tensor::{CHUNK, into_data, par_zeros};
use rayon::prelude::*;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::sync::{Mutex, PoisonError};

/// Buffers of fewer values are left to the allocator, whose free lists keep them mapped:
/// 128 KiB, glibc's initial mmap threshold. Above it glibc maps a block afresh, or once
/// its threshold has grown, trims the heap's top on a free; a pool that started at a MiB
/// left a ResNet-14's batch-1 maps at 112×96 (688 and 344 KiB) to glibc, and its passes
/// took 190–290 page faults each when nothing larger had been freed before
/// (BENCHMARKS.md). (Every size in the crate's own unit tests, so that their layers run
/// on recycled, poisoned buffers.)
pub const MIN_LEN: usize = if cfg!(test) { 1 } else { 1 << 15 };

/// Buffers held at most.
pub const KEEP: usize = 8;

/// Bytes held at most (the oldest buffers are freed first).
pub const KEEP_BYTES: usize = 256 << 20;

/// The engine's pool.
static POOL: Pool = Pool::new(MIN_LEN, KEEP, KEEP_BYTES);

/// `len` values for a layer that overwrites every one of them: a kept buffer of between
/// `len` and `2·len` values if there is one (its old values left in place), otherwise
/// fresh zeros. In debug builds (the tests) every value is NaN, kept buffer or not, so
/// that a value the layer fails to write shows.
pub fn take(len: usize) -> Vec<f32> {
    POOL.take(len)
}

/// [`take`] for a layer that writes each value through [`MaybeUninit::write`]: a kept
/// buffer if one fits, otherwise fresh memory nothing has written yet, not zeroed first
/// (the zero fill of batch norm's fresh training outputs, 193 MB a step of the
/// ResNet-14's, BENCHMARKS.md). The caller turns it into values with
/// [`assume_written`] once it has written every one. In debug builds (the tests) every
/// value is NaN first, as [`take`]'s.
pub fn take_uninit(len: usize) -> Vec<MaybeUninit<f32>> {
    POOL.take_uninit(len)
}

/// The values of a buffer from [`take_uninit`].
///
/// # Safety
///
/// Every element of `v` has been written.
pub unsafe fn assume_written(v: Vec<MaybeUninit<f32>>) -> Vec<f32> {
    let mut v = ManuallyDrop::new(v);
    // SAFETY: the layouts are the same, the caller vouches that every value is written,
    // and `v` is not dropped.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr().cast(), v.len(), v.capacity()) }
}

/// `len` zeros, in a kept buffer if one fits (as [`take`]).
pub fn zeros(len: usize) -> Vec<f32> {
    POOL.zeros(len)
}

/// Keeps `v` for a later [`take`] if it holds at least [`MIN_LEN`] values, freeing the
/// oldest buffers beyond [`KEEP`] or [`KEEP_BYTES`].
pub fn give(v: Vec<f32>) {
    POOL.give(v)
}

/// Keeps a spent tensor's values (see [`give`]).
pub fn give_tensor(t: Tensor) {
    if t.is_standard_layout() {
        give(into_data(t));
    }
}

/// Frees every kept buffer.
pub fn clear() {
    POOL.clear()
}

/// Buffers kept, with their bounds.
struct Pool {
    kept: Mutex<Vec<Vec<f32>>>,
    min_len: usize,
    keep: usize,
    keep_bytes: usize,
}

impl Pool {
    const fn new(min_len: usize, keep: usize, keep_bytes: usize) -> Self {
        Pool {
            kept: Mutex::new(Vec::new()),
            min_len,
            keep,
            keep_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<f32>>> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take(&self, len: usize) -> Vec<f32> {
        let mut v = self.reuse(len).unwrap_or_else(|| par_zeros(len));
        if cfg!(debug_assertions) {
            v.fill(f32::NAN);
        }
        v
    }

    fn take_uninit(&self, len: usize) -> Vec<MaybeUninit<f32>> {
        let mut v = match self.reuse(len) {
            Some(kept) => {
                let mut kept = ManuallyDrop::new(kept);
                // SAFETY: `MaybeUninit<f32>` has the layout of `f32`; the vector's pointer,
                // length and capacity move over unchanged and `kept` is not dropped.
                unsafe {
                    Vec::from_raw_parts(kept.as_mut_ptr().cast(), kept.len(), kept.capacity())
                }
            }
            None => {
                let mut fresh = Vec::with_capacity(len);
                // SAFETY: within the capacity; `MaybeUninit` values need no initialisation.
                unsafe { fresh.set_len(len) };
                fresh
            }
        };
        if cfg!(debug_assertions) {
            v.fill(MaybeUninit::new(f32::NAN));
        }
        v
    }

    fn zeros(&self, len: usize) -> Vec<f32> {
        match self.reuse(len) {
            Some(mut v) => {
                v.par_chunks_mut(CHUNK).for_each(|c| c.fill(0.0));
                v
            }
            None => par_zeros(len),
        }
    }

    /// The kept buffer of least capacity in `len..=2·len`, cut or grown to `len` values.
    fn reuse(&self, len: usize) -> Option<Vec<f32>> {
        if len < self.min_len {
            return None;
        }
        let mut kept = self.lock();
        let (at, _) = kept
            .iter()
            .enumerate()
            .filter(|(_, v)| (len..=2 * len).contains(&v.capacity()))
            .min_by_key(|(_, v)| v.capacity())?;
        let mut v = kept.remove(at);
        drop(kept);
        // Within the capacity: no allocation, and only values past the old length written.
        v.resize(len, 0.0);
        Some(v)
    }

    fn give(&self, v: Vec<f32>) {
        if v.capacity() < self.min_len {
            return;
        }
        let mut kept = self.lock();
        kept.push(v);
        let mut freed = Vec::new();
        while kept.len() > self.keep || bytes(&kept) > self.keep_bytes {
            freed.push(kept.remove(0));
        }
        drop(kept);
        drop(freed); // outside the lock: unmapping a large block takes a while
    }

    fn clear(&self) {
        let kept = std::mem::take(&mut *self.lock());
        drop(kept);
    }
}

fn bytes(kept: &[Vec<f32>]) -> usize {
    kept.iter()
        .map(|v| v.capacity() * std::mem::size_of::<f32>())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_buffer_is_taken_again_for_a_size_it_fits() {
        let pool = Pool::new(100, 4, 1 << 20);
        let mut v = vec![1.0f32; 1000];
        v[7] = 7.0;
        let at = v.as_ptr();
        pool.give(v);
        let w = pool.take(900);
        assert_eq!((w.as_ptr(), w.len()), (at, 900));
        if cfg!(debug_assertions) {
            assert!(
                w.iter().all(|x| x.is_nan()),
                "debug builds poison a taken buffer"
            );
        } else {
            assert_eq!(w[7], 7.0, "release builds leave the old values");
        }
        pool.give(w);
        let z = pool.zeros(1000);
        assert_eq!((z.as_ptr(), z.len()), (at, 1000));
        assert!(z.iter().all(|&x| x == 0.0));
        assert!(pool.lock().is_empty());
    }

    #[test]
    fn an_unwritten_buffer_is_a_kept_one_or_fresh_memory_of_the_length_asked() {
        let pool = Pool::new(100, 4, 1 << 20);
        let kept = vec![3.0f32; 5000];
        let at = kept.as_ptr();
        pool.give(kept);
        let mut v = pool.take_uninit(4000);
        assert_eq!(
            (v.as_ptr().cast::<f32>(), v.len()),
            (at, 4000),
            "the kept buffer"
        );
        v.iter_mut().enumerate().for_each(|(i, x)| {
            x.write(i as f32);
        });
        // SAFETY: every value was written just above.
        let v = unsafe { assume_written(v) };
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as f32));
        assert!(
            v.capacity() >= 5000,
            "the kept buffer's capacity comes back with it"
        );
        let mut fresh = pool.take_uninit(7);
        assert_eq!(fresh.len(), 7);
        fresh.iter_mut().for_each(|x| {
            x.write(1.0);
        });
        // SAFETY: every value was written just above.
        assert_eq!(unsafe { assume_written(fresh) }, [1.0; 7]);
    }

    #[test]
    fn the_smallest_buffer_that_fits_is_taken_and_none_over_twice_the_size() {
        let pool = Pool::new(100, 4, 1 << 20);
        let (big, fits) = (vec![0.0f32; 4000], vec![0.0f32; 1500]);
        let (big_at, fits_at) = (big.as_ptr(), fits.as_ptr());
        pool.give(big);
        pool.give(fits);
        let w = pool.take(1000);
        assert_eq!(w.as_ptr(), fits_at);
        let small = pool.zeros(1999);
        assert_ne!(small.as_ptr(), big_at, "4000 is more than twice 1999");
        assert!(small.iter().all(|&x| x == 0.0), "a fresh buffer is zeros");
        let big = pool.take(2000);
        assert_eq!(big.as_ptr(), big_at);
    }

    #[test]
    fn small_buffers_are_left_to_the_allocator() {
        let pool = Pool::new(100, 4, 1 << 20);
        pool.give(vec![0.0f32; 99]);
        assert!(pool.lock().is_empty());
        pool.give(vec![0.0f32; 200]);
        assert!(pool.reuse(99).is_none(), "below the floor");
        assert_eq!(pool.reuse(100).map(|v| v.len()), Some(100));
    }

    #[test]
    fn the_oldest_buffers_go_beyond_the_bounds() {
        let pool = Pool::new(100, 3, 4 * 1200);
        let lens = [200, 300, 400, 500];
        for len in lens {
            pool.give(vec![0.0f32; len]);
        }
        let kept: Vec<usize> = pool.lock().iter().map(Vec::capacity).collect();
        assert_eq!(kept, [300, 400, 500], "at most three buffers");
        pool.give(vec![0.0f32; 600]);
        let kept: Vec<usize> = pool.lock().iter().map(Vec::capacity).collect();
        assert_eq!(kept, [500, 600], "at most 4800 bytes");
        pool.clear();
        assert!(pool.lock().is_empty());
    }
}
