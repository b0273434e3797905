//! Epilogues: the element-wise layers after a convolution, applied by the convolution
//! itself to each image's output while it is still in cache (inference only).
//!
//! At inference batch norm is a fixed per-channel affine map, so the reference CNN's
//! `conv → batch norm → ReLU → max pool 2×2` can run as one pass per image: the
//! convolution's output tile (one image, `(O, Ho·Wo)`, a few hundred KB) is scaled,
//! rectified and pooled before the next image is computed, and only the pooled maps are
//! written to memory. Run as separate layers, each of the three reads and writes a whole
//! batch of maps (22 MB at batch 64 for the first block), which made them cost as much as
//! the convolutions. This is batch norm folded into the convolution, applied per output
//! channel after the product instead of into the weights, so nothing is precomputed
//! and nothing goes stale when the weights change; the model file is unchanged.
//!
//! MTCNN's nets put a PReLU after every convolution; as a step here it is a select per
//! value in the same pass instead of a copy of the maps and a second pass (the layer
//! copied its input): on a 2-core AMD EPYC, the fastest of three rounds of each figure
//! of `cargo bench --bench detect` fell by 11–15 % at 640×480, 2–7 % at 1920×1080 and
//! 10 % for a face crop's landmarks. P-Net's 2×2 pooling in ceil mode after it joined
//! too: its first pyramid levels' maps (10 channels of a photograph's size) are no longer
//! written whole and read back, and a 1920×1080 photograph searched for faces of 20
//! pixels took 66–68 ms against 76–91 at the fastest of three rounds (the other figures
//! within their noise; BENCHMARKS.md, "PReLU and P-Net's 2×2 pooling in the
//! convolution's pass").
//!
//! Which layers may follow is asked of each layer (`Layer::as_epilogue`), and a layer
//! that can apply them says so through `Layer::infer_then`; `Sequential::infer` joins
//! the two, so the server, `eval-embed` and the trainer's validation all get it.

use super::Layer;
use super::pool::nan_max;

/// One element-wise step a producing layer can apply to its output.
#[derive(Debug, Clone, PartialEq)]
pub enum Epilogue {
    /// `y[c] = scale[c]·x[c] + shift[c]`: batch norm with its running statistics. (C)
    ChannelAffine { scale: Vec<f32>, shift: Vec<f32> },
    /// `max(0, x)`.
    Relu,
    /// `x` where `x > 0`, else `slope[c]·x`: a PReLU (MTCNN's nets put one after every
    /// convolution). A rectifier like ReLU: a chain holds at most one of the two. (C)
    Prelu { slope: Vec<f32> },
    /// Max pooling over 2×2 windows with stride 2 (floor mode; the last row or column
    /// of an odd size is dropped): `MaxPool2d`'s values, up to which of two tying zeros
    /// of either sign is kept (the window is read row by row, the layer reduces it column
    /// by column) and a NaN's payload (the window gives the canonical NaN).
    MaxPool2x2,
    /// The same in ceil mode (MTCNN's P-Net): an odd last row or column pooled on its
    /// own. Each window's maximum is taken in `MaxPool2d`'s order and with its `nan_max`,
    /// so every output is the layer's bits.
    MaxPool2x2Ceil,
}

impl Epilogue {
    /// The order steps may follow one another in a chain.
    fn rank(&self) -> u8 {
        match self {
            Epilogue::ChannelAffine { .. } => 0,
            Epilogue::Relu | Epilogue::Prelu { .. } => 1,
            Epilogue::MaxPool2x2 | Epilogue::MaxPool2x2Ceil => 2,
        }
    }
}

/// The longest run at the front of `next` that one pass can apply: at most one affine
/// map, then at most one rectifier (ReLU or PReLU), then at most one pooling, in that
/// order, each optional.
pub fn chain(next: &[Box<dyn Layer>]) -> Vec<Epilogue> {
    let mut steps: Vec<Epilogue> = Vec::new();
    for layer in next {
        match layer.as_epilogue() {
            Some(step) if steps.last().is_none_or(|last| last.rank() < step.rank()) => {
                steps.push(step)
            }
            _ => break,
        }
    }
    steps
}

/// The front of `chain` that a producer of `c` channels of `h × w` maps applies: its
/// per-channel steps for `c` channels, and a ceil-mode pooling on maps of 2×2 at least.
/// A layer past it runs as itself, and fails on the shape as it does on its own, where
/// the producer would index past its values or pool what the layer refuses.
pub fn for_output(chain: &[Epilogue], (c, h, w): (usize, usize, usize)) -> &[Epilogue] {
    let fits = |step: &Epilogue| match step {
        Epilogue::ChannelAffine { scale, shift } => scale.len() == c && shift.len() == c,
        Epilogue::Prelu { slope } => slope.len() == c,
        Epilogue::MaxPool2x2Ceil => h >= 2 && w >= 2,
        Epilogue::Relu | Epilogue::MaxPool2x2 => true,
    };
    let n = chain.iter().take_while(|step| fits(step)).count();
    &chain[..n]
}

/// Whether `chain` pools, and if so whether in ceil mode.
pub fn pooling(chain: &[Epilogue]) -> Option<bool> {
    chain.iter().find_map(|step| match step {
        Epilogue::MaxPool2x2 => Some(false),
        Epilogue::MaxPool2x2Ceil => Some(true),
        _ => None,
    })
}

/// Whether `chain` pools (in either mode).
pub fn pools(chain: &[Epilogue]) -> bool {
    pooling(chain).is_some()
}

/// The output rows that input rows `rows` of a map (`rows.start` even when the chain
/// pools; `rows.end` odd only at the map's end) give after `chain`.
pub fn output_rows(chain: &[Epilogue], rows: std::ops::Range<usize>) -> usize {
    match pooling(chain) {
        None => rows.len(),
        Some(false) => rows.end / 2 - rows.start / 2,
        Some(true) => rows.end.div_ceil(2) - rows.start / 2,
    }
}

/// The map size `(h, w)` after `chain`.
pub fn output_hw(chain: &[Epilogue], h: usize, w: usize) -> (usize, usize) {
    match pooling(chain) {
        None => (h, w),
        Some(false) => (h / 2, w / 2),
        Some(true) => (h.div_ceil(2), w.div_ceil(2)),
    }
}

/// Applies `chain` to one image's maps `x (C, H, W)`: the element-wise steps in place,
/// then the result (pooled when the chain pools) into `y (C, H', W')`.
pub fn apply(chain: &[Epilogue], (c, h, w): (usize, usize, usize), x: &mut [f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), c * h * w);
    let (ho, wo) = output_hw(chain, h, w);
    debug_assert_eq!(y.len(), c * ho * wo);
    if y.is_empty() {
        return; // pooled to nothing (a map one row or column wide)
    }
    for (ch, (plane, out)) in x
        .chunks_exact_mut(h * w)
        .zip(y.chunks_exact_mut(ho * wo))
        .enumerate()
    {
        apply_plane(chain, ch, (h, w), plane, out);
    }
}

/// The rectifier of a chain for one channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rectify {
    None,
    /// `x.max(0.0)`.
    Relu,
    /// `if x > 0 { x } else { slope·x }`: what [`PRelu`](super::prelu::PRelu) computes
    /// (through this).
    Prelu(f32),
}

impl Rectify {
    /// `v` rectified; ReLU as `Activation` writes it and PReLU as its layer does (the
    /// layer calls this), so a chain gives the bits of the layers one after the other.
    #[inline(always)]
    pub fn apply(self, v: f32) -> f32 {
        match self {
            Rectify::None => v,
            Rectify::Relu => v.max(0.0),
            Rectify::Prelu(slope) => {
                if v > 0.0 {
                    v
                } else {
                    slope * v
                }
            }
        }
    }
}

/// `v` through `rectify` in f64: the definition the tests compare the layers with.
#[cfg(test)]
pub(crate) fn rectified(rectify: Rectify, v: f64) -> f64 {
    match rectify {
        Rectify::None => v,
        Rectify::Relu => v.max(0.0),
        Rectify::Prelu(slope) if v <= 0.0 => f64::from(slope) * v,
        Rectify::Prelu(_) => v,
    }
}

/// The point-wise steps of `chain` for channel `ch`: its affine map `(scale, shift)`, if
/// any, and the rectifier that follows.
pub fn pointwise(chain: &[Epilogue], ch: usize) -> (Option<(f32, f32)>, Rectify) {
    let affine = chain.iter().find_map(|step| match step {
        Epilogue::ChannelAffine { scale, shift } => Some((scale[ch], shift[ch])),
        _ => None,
    });
    let rectify = chain
        .iter()
        .find_map(|step| match step {
            Epilogue::Relu => Some(Rectify::Relu),
            Epilogue::Prelu { slope } => Some(Rectify::Prelu(slope[ch])),
            _ => None,
        })
        .unwrap_or(Rectify::None);
    (affine, rectify)
}

/// [`apply`] on channel `ch` alone: its rows `x (H, W)` (a whole plane, or a band of
/// rows of it starting at an even row) in place, then into `y (H', W')`.
pub fn apply_plane(
    chain: &[Epilogue],
    ch: usize,
    (h, w): (usize, usize),
    x: &mut [f32],
    y: &mut [f32],
) {
    // One loop per kind of step, so that each vectorises without a test per value.
    match pointwise(chain, ch) {
        (Some((a, b)), Rectify::Relu) => x.iter_mut().for_each(|v| *v = (a * *v + b).max(0.0)),
        (Some((a, b)), f @ Rectify::Prelu(_)) => {
            x.iter_mut().for_each(|v| *v = f.apply(a * *v + b))
        }
        (Some((a, b)), Rectify::None) => x.iter_mut().for_each(|v| *v = a * *v + b),
        (None, Rectify::Relu) => x.iter_mut().for_each(|v| *v = v.max(0.0)),
        (None, f @ Rectify::Prelu(_)) => x.iter_mut().for_each(|v| *v = f.apply(*v)),
        (None, Rectify::None) => {}
    }
    let ceil = match pooling(chain) {
        None => return y.copy_from_slice(x),
        Some(ceil) => ceil,
    };
    if ceil {
        return pool_ceil(x, (h, w), y);
    }
    let wo = w / 2;
    debug_assert_eq!(y.len(), h / 2 * wo);
    if wo == 0 {
        return;
    }
    for (oy, row) in y.chunks_exact_mut(wo).enumerate() {
        let (r0, r1) = (&x[2 * oy * w..], &x[(2 * oy + 1) * w..]);
        for (ox, o) in row.iter_mut().enumerate() {
            let j = 2 * ox;
            let window = [r0[j], r0[j + 1], r1[j], r1[j + 1]];
            *o = max_of_window(window);
        }
    }
}

/// Ceil-mode 2×2 pooling of rows `x (H, W)` into `y (⌈H/2⌉, ⌈W/2⌉)`, each window's
/// maximum as `MaxPool2d`'s inference takes it: the window's rows first, column by
/// column, then its columns, with the layer's own `nan_max` (bits, NaN payloads and
/// ties between zeros of either sign included). An odd last row or column is a window
/// of its own.
fn pool_ceil(x: &[f32], (h, w): (usize, usize), y: &mut [f32]) {
    let (ho, wo) = (h.div_ceil(2), w.div_ceil(2));
    debug_assert_eq!(y.len(), ho * wo);
    let full = w / 2;
    for (oy, out) in y.chunks_exact_mut(wo.max(1)).take(ho).enumerate() {
        let r0 = &x[2 * oy * w..][..w];
        // An odd last row pairs with itself: `nan_max(v, v)` is `v`, bits and all.
        let r1 = x.get((2 * oy + 1) * w..(2 * oy + 2) * w).unwrap_or(r0);
        let column = |j: usize| nan_max(r0[j], r1[j]);
        for (ox, o) in out[..full].iter_mut().enumerate() {
            *o = nan_max(column(2 * ox), column(2 * ox + 1));
        }
        if wo > full {
            out[full] = column(w - 1);
        }
    }
}

/// The maximum of a 2×2 window, NaN if any value is NaN (as `MaxPool2d`; see
/// [`Epilogue::MaxPool2x2`] for how the two may differ). Written as
/// selects rather than `MaxPool2d`'s compare-and-branch: on real maps the branches
/// mispredict about half the time, which made pooling cost more than the convolution.
#[inline]
fn max_of_window(v: [f32; 4]) -> f32 {
    let pick = |a: f32, b: f32| if b > a { b } else { a };
    let best = pick(pick(pick(v[0], v[1]), v[2]), v[3]);
    let nan = v[0].is_nan() | v[1].is_nan() | v[2].is_nan() | v[3].is_nan();
    if nan { f32::NAN } else { best }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::activation::Activation;
    use crate::nn::batch_norm::BatchNorm;
    use crate::nn::pool::MaxPool2d;
    use crate::nn::prelu::PRelu;
    use crate::nn::{Mode, Tensor};

    fn layers(list: Vec<Box<dyn Layer>>) -> Vec<Box<dyn Layer>> {
        list
    }

    #[test]
    fn chain_takes_batch_norm_relu_and_pool_in_order_only() {
        let bn = || Box::new(BatchNorm::new(2).unwrap()) as Box<dyn Layer>;
        let relu = || Box::new(Activation::relu()) as Box<dyn Layer>;
        let pool = || Box::new(MaxPool2d::new(2, 2).unwrap()) as Box<dyn Layer>;
        let kinds = |c: Vec<Epilogue>| c.iter().map(Epilogue::rank).collect::<Vec<_>>();
        assert_eq!(kinds(chain(&layers(vec![bn(), relu(), pool()]))), [0, 1, 2]);
        assert_eq!(kinds(chain(&layers(vec![relu(), bn(), pool()]))), [1]);
        assert_eq!(kinds(chain(&layers(vec![pool(), relu()]))), [2]);
        let prelu = || Box::new(PRelu::new(2).unwrap()) as Box<dyn Layer>;
        assert_eq!(
            kinds(chain(&layers(vec![bn(), prelu(), pool()]))),
            [0, 1, 2]
        );
        // One rectifier: a PReLU after a ReLU (or another PReLU) runs as itself.
        assert_eq!(kinds(chain(&layers(vec![relu(), prelu(), pool()]))), [1]);
        assert_eq!(kinds(chain(&layers(vec![prelu(), prelu()]))), [1]);
        let ceil = || Box::new(MaxPool2d::ceil(2, 2).unwrap()) as Box<dyn Layer>;
        assert_eq!(
            chain(&layers(vec![prelu(), ceil()])),
            [
                Epilogue::Prelu {
                    slope: vec![0.25; 2]
                },
                Epilogue::MaxPool2x2Ceil
            ]
        );
        let three = Box::new(MaxPool2d::ceil(3, 2).unwrap()) as Box<dyn Layer>;
        assert!(chain(&layers(vec![three])).is_empty());
    }

    #[test]
    fn apply_equals_the_layers_run_one_after_the_other() {
        let c = 3;
        let bn = |x: &Tensor| {
            let mut bn = BatchNorm::new(c).unwrap();
            bn.forward(&(x * 0.5 + 1.0), Mode::Train).unwrap(); // non-trivial running stats
            Box::new(bn) as Box<dyn Layer>
        };
        let prelu = || {
            let mut prelu = PRelu::new(c).unwrap();
            prelu.slope.value = Tensor::from_shape_vec(vec![c], vec![0.25, -0.5, 0.0]).unwrap();
            Box::new(prelu) as Box<dyn Layer>
        };
        let pool = || Box::new(MaxPool2d::new(2, 2).unwrap()) as Box<dyn Layer>;
        let ceil = || Box::new(MaxPool2d::ceil(2, 2).unwrap()) as Box<dyn Layer>;
        // Odd heights and widths: floor mode drops the last row or column, ceil mode pools
        // it alone.
        for (h, w) in [(5, 4), (4, 5), (5, 5)] {
            let x = Tensor::from_shape_fn(vec![1, c, h, w], |i| {
                ((i[1] * 7 + i[2] * 5 + i[3] * 3) % 11) as f32 - 5.0
            });
            // Zeros of both signs (ties that a maximum resolves by order) and a NaN.
            let mut specials = x.clone();
            for (i, v) in specials.iter_mut().enumerate() {
                match i % 7 {
                    3 => *v = -0.0,
                    5 => *v = 0.0,
                    _ => {}
                }
            }
            specials.as_slice_mut().unwrap()[13] = f32::NAN;
            // Without batch norm the chain computes what the layers do, to the bit.
            for (net, input, exact) in [
                (
                    vec![bn(&x), Box::new(Activation::relu()), pool()],
                    &x,
                    false,
                ),
                (vec![bn(&x), prelu(), pool()], &x, false),
                (vec![bn(&x), prelu(), ceil()], &x, false),
                (vec![prelu(), pool()], &x, true),
                (vec![prelu()], &specials, true),
                (vec![prelu(), ceil()], &specials, true),
                (vec![ceil()], &specials, true),
            ] {
                let net = layers(net);
                let steps = chain(&net);
                assert_eq!(steps.len(), net.len());
                let expected = net
                    .iter()
                    .try_fold(input.clone(), |y, layer| layer.infer(&y))
                    .unwrap();
                let mut tile = input.as_slice().unwrap().to_vec();
                let (ho, wo) = output_hw(&steps, h, w);
                let mut y = vec![0.0; c * ho * wo];
                apply(&steps, (c, h, w), &mut tile, &mut y);
                assert_eq!(expected.shape(), &[1, c, ho, wo]);
                for (a, b) in y.iter().zip(expected.iter()) {
                    if exact {
                        assert_eq!(a.to_bits(), b.to_bits(), "{steps:?} {h}×{w}: {a} vs {b}");
                    } else {
                        assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "{a} vs {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_chain_a_layer_cannot_take_whole_is_left_to_its_layers() {
        let affine = |c: usize| Epilogue::ChannelAffine {
            scale: vec![1.0; c],
            shift: vec![0.0; c],
        };
        let prelu = |c: usize| Epilogue::Prelu {
            slope: vec![0.5; c],
        };
        let chain = [affine(4), prelu(3), Epilogue::MaxPool2x2];
        assert_eq!(for_output(&chain, (4, 8, 8)).len(), 1);
        assert_eq!(for_output(&chain, (3, 8, 8)).len(), 0);
        let chain = [Epilogue::Relu, prelu(3), Epilogue::MaxPool2x2];
        assert_eq!(for_output(&chain, (4, 8, 8)).len(), 1);
        assert_eq!(for_output(&chain, (3, 8, 8)).len(), 3);
        // `MaxPool2d` in ceil mode refuses maps under 2×2; so the chain leaves it out.
        let chain = [prelu(3), Epilogue::MaxPool2x2Ceil];
        assert_eq!(for_output(&chain, (3, 2, 2)).len(), 2);
        assert_eq!(for_output(&chain, (3, 1, 9)).len(), 1);
        assert_eq!(for_output(&chain, (3, 9, 1)).len(), 1);
    }
}
