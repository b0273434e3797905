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
    /// Max pooling over 2×2 windows with stride 2 (floor mode; the last row or column
    /// of an odd size is dropped), ties and NaN as `MaxPool2d`.
    MaxPool2x2,
}

impl Epilogue {
    /// The order steps may follow one another in a chain.
    fn rank(&self) -> u8 {
        match self {
            Epilogue::ChannelAffine { .. } => 0,
            Epilogue::Relu => 1,
            Epilogue::MaxPool2x2 => 2,
        }
    }
}

/// The longest run at the front of `next` that one pass can apply: at most one affine
/// map, then at most one ReLU, then at most one pooling, in that order, each optional.
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

/// The point-wise steps of `chain` for channel `ch`: its affine map `(scale, shift)`, if
/// any, and whether a ReLU follows.
pub fn pointwise(chain: &[Epilogue], ch: usize) -> (Option<(f32, f32)>, bool) {
    let affine = chain.iter().find_map(|step| match step {
        Epilogue::ChannelAffine { scale, shift } => Some((scale[ch], shift[ch])),
        _ => None,
    });
    (affine, chain.contains(&Epilogue::Relu))
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
    match pointwise(chain, ch) {
        (Some((a, b)), true) => x.iter_mut().for_each(|v| *v = (a * *v + b).max(0.0)),
        (Some((a, b)), false) => x.iter_mut().for_each(|v| *v = a * *v + b),
        (None, true) => x.iter_mut().for_each(|v| *v = v.max(0.0)),
        (None, false) => {}
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
        let prelu = Box::new(PRelu::new(2).unwrap()) as Box<dyn Layer>;
        assert_eq!(kinds(chain(&layers(vec![bn(), prelu, pool()]))), [0]);
        let ceil = Box::new(MaxPool2d::ceil(2, 2).unwrap()) as Box<dyn Layer>;
        assert!(chain(&layers(vec![ceil])).is_empty());
    }

    #[test]
    fn apply_equals_the_layers_run_one_after_the_other() {
        let (c, h, w) = (3, 5, 4);
        let x = Tensor::from_shape_fn(vec![1, c, h, w], |i| {
            ((i[1] * 7 + i[2] * 5 + i[3] * 3) % 11) as f32 - 5.0
        });
        let mut bn = BatchNorm::new(c).unwrap();
        bn.forward(&(&x * 0.5 + 1.0), Mode::Train).unwrap(); // non-trivial running stats
        let net: Vec<Box<dyn Layer>> = layers(vec![
            Box::new(bn),
            Box::new(Activation::relu()),
            Box::new(MaxPool2d::new(2, 2).unwrap()),
        ]);
        let steps = chain(&net);
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
            assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }
}
