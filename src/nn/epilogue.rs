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
//! 10 % for a face crop's landmarks (BENCHMARKS.md, "PReLU in the convolution's pass").
//!
//! Which layers may follow is asked of each layer (`Layer::as_epilogue`), and a layer
//! that can apply them says so through `Layer::infer_then`; `Sequential::infer` joins
//! the two, so the server, `eval-embed` and the trainer's validation all get it.

use super::Layer;

/// One element-wise step a producing layer can apply to its output.
#[derive(Debug, Clone, PartialEq)]
pub enum Epilogue {
    /// `y[c] = scale[c]·x[c] + shift[c]`: batch norm with its running statistics. (C)
    ChannelAffine { scale: Vec<f32>, shift: Vec<f32> },
    /// `max(0, x)`.
    Relu,
    /// `x` where `x > 0`, else `slope[c]·x`: a PReLU (MTCNN's nets put one after every
    /// convolution). A rectifier as ReLU is: a chain holds at most one of the two. (C)
    Prelu { slope: Vec<f32> },
    /// Max pooling over 2×2 windows with stride 2 (floor mode; the last row or column
    /// of an odd size is dropped), ties and NaN as `MaxPool2d`.
    MaxPool2x2,
}

impl Epilogue {
    /// The order steps may follow one another in a chain.
    fn rank(&self) -> u8 {
        match self {
            Epilogue::ChannelAffine { .. } => 0,
            Epilogue::Relu | Epilogue::Prelu { .. } => 1,
            Epilogue::MaxPool2x2 => 2,
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

/// The front of `chain` whose per-channel steps are for `c` channels. A layer after a
/// producer of another width is left to run as itself (and to fail on the shape, as it
/// does on its own), not indexed past its values.
pub fn for_channels(chain: &[Epilogue], c: usize) -> &[Epilogue] {
    let fits = |step: &Epilogue| match step {
        Epilogue::ChannelAffine { scale, shift } => scale.len() == c && shift.len() == c,
        Epilogue::Prelu { slope } => slope.len() == c,
        Epilogue::Relu | Epilogue::MaxPool2x2 => true,
    };
    let n = chain.iter().take_while(|step| fits(step)).count();
    &chain[..n]
}

/// The map size `(h, w)` after `chain`.
pub fn output_hw(chain: &[Epilogue], h: usize, w: usize) -> (usize, usize) {
    if chain.contains(&Epilogue::MaxPool2x2) {
        (h / 2, w / 2)
    } else {
        (h, w)
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
    if !chain.contains(&Epilogue::MaxPool2x2) {
        y.copy_from_slice(x);
        return;
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

/// The maximum of a 2×2 window, NaN if any value is NaN (as `MaxPool2d`). Written as
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
        let ceil = Box::new(MaxPool2d::ceil(2, 2).unwrap()) as Box<dyn Layer>;
        assert!(chain(&layers(vec![ceil])).is_empty());
    }

    #[test]
    fn apply_equals_the_layers_run_one_after_the_other() {
        let (c, h, w) = (3, 5, 4);
        let x = Tensor::from_shape_fn(vec![1, c, h, w], |i| {
            ((i[1] * 7 + i[2] * 5 + i[3] * 3) % 11) as f32 - 5.0
        });
        let bn = || {
            let mut bn = BatchNorm::new(c).unwrap();
            bn.forward(&(&x * 0.5 + 1.0), Mode::Train).unwrap(); // non-trivial running stats
            Box::new(bn) as Box<dyn Layer>
        };
        let prelu = || {
            let mut prelu = PRelu::new(c).unwrap();
            prelu.slope.value = Tensor::from_shape_vec(vec![c], vec![0.25, -0.5, 0.0]).unwrap();
            Box::new(prelu) as Box<dyn Layer>
        };
        let pool = || Box::new(MaxPool2d::new(2, 2).unwrap()) as Box<dyn Layer>;
        // Without batch norm the chain computes what the layers do, to the bit.
        for (net, exact) in [
            (vec![bn(), Box::new(Activation::relu()), pool()], false),
            (vec![bn(), prelu(), pool()], false),
            (vec![prelu(), pool()], true),
            (vec![prelu()], true),
        ] {
            let net = layers(net);
            let steps = chain(&net);
            assert_eq!(steps.len(), net.len());
            let expected = net
                .iter()
                .try_fold(x.clone(), |y, layer| layer.infer(&y))
                .unwrap();
            let mut tile = x.as_slice().unwrap().to_vec();
            let (ho, wo) = output_hw(&steps, h, w);
            let mut y = vec![0.0; c * ho * wo];
            apply(&steps, (c, h, w), &mut tile, &mut y);
            assert_eq!(expected.shape(), &[1, c, ho, wo]);
            for (a, b) in y.iter().zip(expected.iter()) {
                if exact {
                    assert_eq!(a.to_bits(), b.to_bits(), "{steps:?}: {a} vs {b}");
                } else {
                    assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "{a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn a_chain_for_another_width_is_left_to_its_layers() {
        let affine = |c: usize| Epilogue::ChannelAffine {
            scale: vec![1.0; c],
            shift: vec![0.0; c],
        };
        let prelu = |c: usize| Epilogue::Prelu {
            slope: vec![0.5; c],
        };
        let chain = [affine(4), prelu(3), Epilogue::MaxPool2x2];
        assert_eq!(for_channels(&chain, 4).len(), 1);
        assert_eq!(for_channels(&chain, 3).len(), 0);
        let chain = [Epilogue::Relu, prelu(3), Epilogue::MaxPool2x2];
        assert_eq!(for_channels(&chain, 4).len(), 1);
        assert_eq!(for_channels(&chain, 3).len(), 3);
    }
}
