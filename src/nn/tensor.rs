//! Small helpers shared by the layers: contiguous data, shape checks, building tensors.

use super::{NnError, Result, Tensor};
use std::borrow::Cow;

/// The elements of `x` in row-major order, borrowed when `x` is already standard layout.
pub fn data(x: &Tensor) -> Cow<'_, [f32]> {
    match x.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(x.iter().copied().collect()),
    }
}

/// The elements of `x` in row-major order, taking its buffer without a copy when `x`
/// owns exactly its elements in standard layout (a layer's output always does).
pub fn into_data(x: Tensor) -> Vec<f32> {
    if !x.is_standard_layout() {
        return x.iter().copied().collect();
    }
    let len = x.len();
    let (mut values, offset) = x.into_raw_vec_and_offset();
    let start = offset.unwrap_or(0);
    if start == 0 && values.len() == len {
        values
    } else {
        values.drain(start..start + len).collect()
    }
}

/// A tensor from row-major values; the length must match (an internal invariant).
pub fn from_vec(shape: &[usize], values: Vec<f32>) -> Result<Tensor> {
    Tensor::from_shape_vec(shape.to_vec(), values)
        .map_err(|e| NnError::Invalid(format!("tensor of shape {shape:?}: {e}")))
}

/// `x` must be `(N, C, H, W)` with `H, W ≥ 1`, and `C = channels` when given. An empty
/// map has no image to convolve or pool, and would make a layer's per-plane loops step
/// by zero; `N = 0` (an empty batch) is allowed.
pub fn nchw(op: &'static str, shape: &[usize], channels: Option<usize>) -> Result<[usize; 4]> {
    let expected = || match channels {
        Some(c) => format!("[N, {c}, H, W] with H, W ≥ 1"),
        None => "[N, C, H, W] with H, W ≥ 1".to_string(),
    };
    match *shape {
        [n, c, h, w] if h >= 1 && w >= 1 && channels.is_none_or(|want| want == c) => {
            Ok([n, c, h, w])
        }
        _ => Err(NnError::shape(op, expected(), shape)),
    }
}

/// `x` must be `(N, C)` or `(N, C, H, W)` with `C = channels` (and `H, W ≥ 1`, as in
/// [`nchw`]); returns `(N, C, H·W)` (`H·W = 1` for the 2-D case), the view per-channel
/// layers work on.
pub fn per_channel(
    op: &'static str,
    shape: &[usize],
    channels: usize,
) -> Result<(usize, usize, usize)> {
    match *shape {
        [n, c] if c == channels => Ok((n, c, 1)),
        [n, c, h, w] if c == channels && h >= 1 && w >= 1 => Ok((n, c, h * w)),
        _ => Err(NnError::shape(
            op,
            format!("[N, {channels}] or [N, {channels}, H, W] with H, W ≥ 1"),
            shape,
        )),
    }
}

/// `dy` must have exactly the shape of the last forward's output.
pub fn same_shape(op: &'static str, dy: &Tensor, expected: &[usize]) -> Result<()> {
    if dy.shape() == expected {
        Ok(())
    } else {
        Err(NnError::shape(
            op,
            format!("{expected:?} (dE/dy)"),
            dy.shape(),
        ))
    }
}

/// Runs `f` compiled for AVX2 when the CPU has it (AVX-512 when it has that): the
/// build targets baseline x86-64, where the element-wise loops run four lanes wide.
/// `f` is called from a function compiled with the wider instructions, and its loops use
/// them only when the compiler inlines it there: pass a closure marked
/// `#[inline(always)]` (`wide(#[inline(always)] || …)`), and mark the functions it calls
/// likewise. Left to itself the compiler kept batch norm's two larger closures (its
/// statistics and its gradient sums) out of line, in four-lane code, while it inlined the
/// two smaller ones. No operation changes (nothing is fused or reassociated), so
/// the results are the same to the bit on every path. Meant for a whole run of a loop,
/// not an element: the feature check runs on every call.
#[inline]
pub fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        fn avx512<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        #[target_feature(enable = "avx2")]
        fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { avx512(f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { avx2(f) };
        }
    }
    f()
}

/// Elements per rayon task in element-wise loops: large enough to amortise scheduling,
/// small enough to split a batch across both cores.
pub const CHUNK: usize = 1 << 14;

/// `len` zeros, written by all the pool's threads. A large buffer's `vec![0.0; len]`
/// is cleared by the calling thread alone (the allocator hands back freed memory, which
/// it must zero) while the other cores wait: 4.4 % of the reference CNN's training step
/// (its convolutions' outputs and input gradients, batch norm's outputs).
/// Each thread fills whole chunks with `fill`, which becomes a `memset` (an element-wise
/// `collect` wrote 16 bytes at a time and gave back half the gain).
pub fn par_zeros<T: Default + Copy + Send + Sync>(len: usize) -> Vec<T> {
    use rayon::prelude::*;
    use std::mem::MaybeUninit;
    let mut out = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(CHUNK)
        .for_each(|chunk| chunk.fill(MaybeUninit::new(T::default())));
    // SAFETY: the capacity is at least `len`, and the loop above wrote all of the first
    // `len` elements.
    unsafe { out.set_len(len) };
    out
}

/// `f` applied to every element, in parallel, into a fresh vector whose values are
/// each written once (no zero fill first: a single-threaded `memset` of the whole
/// output while the other cores waited, 1.7 % of the ResNet-14's training step in its
/// ReLUs, BENCHMARKS.md).
pub fn par_map<T: Send>(xs: &[f32], f: impl Fn(f32) -> T + Sync) -> Vec<T> {
    par_zip_map(xs, xs, |x, _| f(x))
}

/// `f(a, b)` for every pair of elements, in parallel, into a fresh vector (as
/// [`par_map`]). `a` and `b` have the same length.
pub fn par_zip_map<A: Copy + Sync, B: Copy + Sync, T: Send>(
    a: &[A],
    b: &[B],
    f: impl Fn(A, B) -> T + Sync,
) -> Vec<T> {
    use rayon::prelude::*;
    assert_eq!(a.len(), b.len(), "par_zip_map of unequal lengths");
    let mut out = Vec::with_capacity(a.len());
    out.spare_capacity_mut()[..a.len()]
        .par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
        .for_each(|(o, (a, b))| {
            for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
                o.write(f(a, b));
            }
        });
    // SAFETY: the capacity is at least `a.len()`, and the loop wrote each of the first
    // `a.len()` elements (its chunks of `a`, `b` and the output have equal lengths). A
    // panic in `f` leaves the length 0.
    unsafe { out.set_len(a.len()) };
    out
}

/// `a += b` element by element, in parallel; then `max(0, ·)` with `relu`. The sums
/// are the same additions a sequential loop makes, so the bits are too.
pub fn par_add_assign(a: &mut [f32], b: &[f32], relu: bool) {
    use rayon::prelude::*;
    debug_assert_eq!(a.len(), b.len());
    a.par_chunks_mut(CHUNK)
        .zip(b.par_chunks(CHUNK))
        .for_each(|(a, b)| {
            if relu {
                a.iter_mut()
                    .zip(b)
                    .for_each(|(a, &b)| *a = (*a + b).max(0.0));
            } else {
                a.iter_mut().zip(b).for_each(|(a, &b)| *a += b);
            }
        });
}

/// `max(0, x)` and, beside it, `1` where the result is positive, else `0` (a ReLU's
/// derivative), in one parallel pass into two fresh vectors (as [`par_map`]).
pub fn par_relu_with_mask(xs: &[f32]) -> (Vec<f32>, Vec<u8>) {
    use rayon::prelude::*;
    let (mut y, mut mask) = (Vec::with_capacity(xs.len()), Vec::with_capacity(xs.len()));
    y.spare_capacity_mut()[..xs.len()]
        .par_chunks_mut(CHUNK)
        .zip(mask.spare_capacity_mut()[..xs.len()].par_chunks_mut(CHUNK))
        .zip(xs.par_chunks(CHUNK))
        .for_each(|((y, m), x)| {
            for ((y, m), &x) in y.iter_mut().zip(m.iter_mut()).zip(x) {
                y.write(x.max(0.0));
                m.write(u8::from(x > 0.0));
            }
        });
    // SAFETY: both capacities are at least `xs.len()`, and the loop wrote each of the
    // first `xs.len()` values of both (its chunks of `y`, the mask and `xs` have equal
    // lengths).
    unsafe {
        y.set_len(xs.len());
        mask.set_len(xs.len());
    }
    (y, mask)
}

/// `a` where `mask` is 1, `0` where it is 0, in parallel (a fresh vector, as
/// [`par_map`]).
pub fn par_mask(a: &[f32], mask: &[u8]) -> Vec<f32> {
    par_zip_map(a, mask, |a, m| if m != 0 { a } else { 0.0 })
}

/// Σ f(xᵢ, yᵢ) with eight independent f32 accumulators, so the loop vectorises (a single
/// running sum is a serial dependency chain). Used on runs of a few thousand values,
/// where the f32 error stays far below the tolerances of the callers.
#[inline(always)]
pub fn lane_sum(xs: &[f32], ys: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let (xc, yc) = (xs.chunks_exact(8), ys.chunks_exact(8));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (x8, y8) in xc.zip(yc) {
        for lane in 0..8 {
            acc[lane] += f(x8[lane], y8[lane]);
        }
    }
    let tail: f32 = xr.iter().zip(yr).map(|(&x, &y)| f(x, y)).sum();
    acc.iter().sum::<f32>() + tail
}

/// `acc[r] += Σ_j m[r·width + j]` for each row `r` of `m (acc.len(), width)`: the same
/// bits as `acc[r] += row.iter().sum::<f32>()` row by row (each row summed from −0.0 in
/// order, then added), eight rows at a time. One running sum waits out each add's
/// latency in turn; eight independent ones overlap: a convolution's bias gradient
/// summed row by row took about 5 % of the reference CNN's training step.
pub fn add_row_sums(acc: &mut [f32], m: &[f32], width: usize) {
    const ROWS: usize = 8;
    if width == 0 {
        return;
    }
    assert_eq!(
        m.len(),
        acc.len() * width,
        "add_row_sums: m is not (rows, width)"
    );
    for (acc, block) in acc.chunks_mut(ROWS).zip(m.chunks(ROWS * width)) {
        let mut sums = [-0.0f32; ROWS];
        if block.len() == ROWS * width {
            let rows: [&[f32]; ROWS] = std::array::from_fn(|r| &block[r * width..][..width]);
            for j in 0..width {
                for (sum, row) in sums.iter_mut().zip(&rows) {
                    *sum += row[j];
                }
            }
        } else {
            for (sum, row) in sums.iter_mut().zip(block.chunks_exact(width)) {
                *sum = row.iter().sum::<f32>();
            }
        }
        for (a, sum) in acc.iter_mut().zip(sums) {
            *a += sum;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_zeros_are_as_many_zeros_as_asked() {
        for len in [0, 1, CHUNK - 1, 3 * CHUNK + 5] {
            let z: Vec<f32> = par_zeros(len);
            assert_eq!(z.len(), len);
            assert!(z.iter().all(|v| v.to_bits() == 0), "{len}");
            let z: Vec<u32> = par_zeros(len);
            assert!(z.len() == len && z.iter().all(|&v| v == 0), "{len}");
        }
    }

    /// The element-wise maps write every value of their fresh vectors, across chunk
    /// boundaries and a ragged last chunk, as a sequential loop does.
    #[test]
    fn parallel_maps_write_every_value_as_a_loop_does() {
        for len in [0, 1, CHUNK - 1, 3 * CHUNK + 5] {
            let xs: Vec<f32> = (0..len).map(|i| (i % 7) as f32 - 3.0).collect();
            let ys: Vec<f32> = (0..len).map(|i| (i % 5) as f32 * 0.5).collect();
            let mask: Vec<u8> = xs.iter().map(|&x| u8::from(x > 0.0)).collect();
            assert_eq!(
                par_map(&xs, |x| x * 2.0),
                xs.iter().map(|x| x * 2.0).collect::<Vec<_>>()
            );
            let sums: Vec<f32> = xs.iter().zip(&ys).map(|(x, y)| x + y).collect();
            assert_eq!(par_zip_map(&xs, &ys, |x, y| x + y), sums, "{len}");
            let (relu, m) = par_relu_with_mask(&xs);
            assert_eq!(relu, xs.iter().map(|x| x.max(0.0)).collect::<Vec<_>>());
            assert_eq!(m, mask, "{len}");
            let masked: Vec<f32> = ys
                .iter()
                .zip(&mask)
                .map(|(&y, &m)| y * f32::from(m))
                .collect();
            assert_eq!(par_mask(&ys, &mask), masked, "{len}");
        }
    }

    /// Eight rows at a time, a partial block, and every width up to past a vector: the
    /// same bits as row-by-row sums, on values whose order of addition matters.
    #[test]
    fn row_sums_add_the_same_bits_as_one_row_at_a_time() {
        for rows in [1, 7, 8, 13, 16] {
            for width in [0, 1, 5, 17, 100] {
                let m: Vec<f32> = (0..rows * width)
                    .map(|i| ((i * 7919) % 1009) as f32 / 97.0 - 5.1 + (i % 3) as f32 * 1e6)
                    .collect();
                let start: Vec<f32> = (0..rows).map(|r| r as f32 * 0.37 - 1.0).collect();
                let mut want = start.clone();
                for (a, row) in want.iter_mut().zip(m.chunks_exact(width.max(1))) {
                    *a += row.iter().sum::<f32>();
                }
                let mut got = start;
                add_row_sums(&mut got, &m, width);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "{rows} rows of {width}");
            }
        }
    }

    /// What [`wide`] promises: the wider instructions change no result. Batch norm's
    /// sums and its element-wise map, run inside and outside it on values with
    /// rounding to lose (and a length that leaves a tail), agree to the bit.
    #[test]
    fn wide_instructions_give_the_same_bits() {
        let xs: Vec<f32> = (0..1003)
            .map(|i| ((i * 7919) % 1009) as f32 / 97.0 - 5.1)
            .collect();
        let ys: Vec<f32> = (0..1003)
            .map(|i| ((i * 104_729) % 1013) as f32 / 13.0 - 37.7)
            .collect();
        let (mu, k, g, b) = (0.37f32, 1.913f32, -0.71f32, 0.05f32);
        let sums = || {
            let plain = lane_sum(&xs, &ys, |d, v| d * ((v - mu) * k));
            let gated = lane_sum(&xs, &ys, |d, v| if g * v + b > 0.0 { d } else { 0.0 });
            (plain.to_bits(), gated.to_bits())
        };
        assert_eq!(wide(sums), sums());
        let map = || -> Vec<u32> {
            xs.iter()
                .map(|&v| (g * ((v - mu) * k) + b).max(0.0).to_bits())
                .collect()
        };
        assert_eq!(wide(map), map());
    }
}
