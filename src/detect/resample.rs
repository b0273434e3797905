//! Area resampling of grey planes, as PyTorch's `interpolate(mode="area")` (adaptive
//! average pooling), which MTCNN's reference implementation uses for its pyramid and
//! its crops.

/// A grey image as `f32` pixel values (0–255), row-major `(H, W)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Plane {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl Plane {
    pub fn from_gray(image: &image::GrayImage) -> Plane {
        Plane {
            width: image.width() as usize,
            height: image.height() as usize,
            data: image.as_raw().iter().map(|&v| f32::from(v)).collect(),
        }
    }

    /// Bilinear sample at `(x, y)` in pixel-index coordinates (pixel centres at whole
    /// numbers), the border pixels repeated beyond the edges.
    #[inline]
    pub fn bilinear(&self, x: f32, y: f32) -> f32 {
        let max_x = (self.width - 1) as f32;
        let max_y = (self.height - 1) as f32;
        let x = x.clamp(0.0, max_x);
        let y = y.clamp(0.0, max_y);
        // Clamped to the image: the casts cannot go out of range, and truncating a
        // non-negative value is its floor (`floor` is a library call on the baseline
        // x86-64 target, 1% of a face import's samples).
        let (x0, y0) = (x as usize, y as usize);
        let (x1, y1) = ((x0 + 1).min(self.width - 1), (y0 + 1).min(self.height - 1));
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        let at = |xx: usize, yy: usize| self.data[yy * self.width + xx];
        let top = at(x0, y0) + (at(x1, y0) - at(x0, y0)) * fx;
        let bottom = at(x0, y1) + (at(x1, y1) - at(x0, y1)) * fx;
        top + (bottom - top) * fy
    }
}

/// Source range `[start, end)` averaged into output `i` of `out` (PyTorch's adaptive
/// pooling: `floor(i·n/out)` to `ceil((i+1)·n/out)`).
#[inline]
fn window(i: usize, n: usize, out: usize) -> (usize, usize) {
    ((i * n) / out, ((i + 1) * n).div_ceil(out))
}

/// The sub-rectangle `[x0, x1) × [y0, y1)` of `plane` (inside it, non-empty) resized to
/// `ow × oh` by area averaging. Separable: the average over a rectangle of uniform
/// weights is the average over rows of the averages over columns.
pub fn area_resize_region(
    plane: &Plane,
    (x0, y0, x1, y1): (usize, usize, usize, usize),
    ow: usize,
    oh: usize,
) -> Vec<f32> {
    let (w, h) = (x1 - x0, y1 - y0);
    let cols: Vec<(usize, usize)> = (0..ow).map(|i| window(i, w, ow)).collect();
    // Horizontal pass: (h, ow).
    let mut horizontal = vec![0.0f32; h * ow];
    for (r, out_row) in horizontal.chunks_exact_mut(ow).enumerate() {
        let row = &plane.data[(y0 + r) * plane.width + x0..(y0 + r) * plane.width + x1];
        for (o, &(s, e)) in out_row.iter_mut().zip(&cols) {
            *o = row[s..e].iter().sum::<f32>() / (e - s) as f32;
        }
    }
    // Vertical pass: (oh, ow).
    let mut out = vec![0.0f32; oh * ow];
    for (i, out_row) in out.chunks_exact_mut(ow).enumerate() {
        let (s, e) = window(i, h, oh);
        for r in s..e {
            for (o, &v) in out_row.iter_mut().zip(&horizontal[r * ow..(r + 1) * ow]) {
                *o += v;
            }
        }
        let n = (e - s) as f32;
        out_row.iter_mut().for_each(|o| *o /= n);
    }
    out
}

/// The whole plane resized to `ow × oh` by area averaging.
pub fn area_resize(plane: &Plane, ow: usize, oh: usize) -> Vec<f32> {
    area_resize_region(plane, (0, 0, plane.width, plane.height), ow, oh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_resize_averages_blocks_and_keeps_constants() {
        let plane = Plane {
            width: 4,
            height: 2,
            data: vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0],
        };
        assert_eq!(area_resize(&plane, 2, 1), vec![5.0, 9.0]);
        // Upsampling repeats (windows of one pixel).
        assert_eq!(area_resize(&plane, 8, 2)[..4], [0.0, 0.0, 2.0, 2.0]);
        // 3 → 2: windows [0, 2) and [1, 3), overlapping as in PyTorch.
        let row = Plane {
            width: 3,
            height: 1,
            data: vec![1.0, 2.0, 4.0],
        };
        assert_eq!(area_resize(&row, 2, 1), vec![1.5, 3.0]);
    }

    #[test]
    fn bilinear_interpolates_and_repeats_the_border() {
        let plane = Plane {
            width: 2,
            height: 2,
            data: vec![0.0, 10.0, 20.0, 30.0],
        };
        assert_eq!(plane.bilinear(0.5, 0.5), 15.0);
        assert_eq!(plane.bilinear(-3.0, 0.0), 0.0);
        assert_eq!(plane.bilinear(1.0, 9.0), 30.0);
    }
}
