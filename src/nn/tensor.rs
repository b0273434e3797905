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

/// A tensor from row-major values; the length must match (an internal invariant).
pub fn from_vec(shape: &[usize], values: Vec<f32>) -> Result<Tensor> {
    Tensor::from_shape_vec(shape.to_vec(), values)
        .map_err(|e| NnError::Invalid(format!("tensor of shape {shape:?}: {e}")))
}

/// `x` must be `(N, C, H, W)`, with `C = channels` when given.
pub fn nchw(op: &'static str, shape: &[usize], channels: Option<usize>) -> Result<[usize; 4]> {
    let expected = || match channels {
        Some(c) => format!("[N, {c}, H, W]"),
        None => "[N, C, H, W]".to_string(),
    };
    match *shape {
        [n, c, h, w] if channels.is_none_or(|want| want == c) => Ok([n, c, h, w]),
        _ => Err(NnError::shape(op, expected(), shape)),
    }
}

/// `x` must be `(N, C)` or `(N, C, H, W)` with `C = channels`; returns `(N, C, H·W)`
/// (`H·W = 1` for the 2-D case), the view per-channel layers work on.
pub fn per_channel(
    op: &'static str,
    shape: &[usize],
    channels: usize,
) -> Result<(usize, usize, usize)> {
    match *shape {
        [n, c] if c == channels => Ok((n, c, 1)),
        [n, c, h, w] if c == channels => Ok((n, c, h * w)),
        _ => Err(NnError::shape(
            op,
            format!("[N, {channels}] or [N, {channels}, H, W]"),
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
