//! Histogram equalisation of grey images, for the detector's second and third looks:
//! over the whole image, and by tiles (CLAHE) for a face lit from one side.

use image::GrayImage;

/// Histogram equalisation: each grey level mapped to its rank among the pixels, so a
/// dark or flat image uses the whole range.
pub fn equalised(image: &GrayImage) -> GrayImage {
    let mut hist = [0u64; 256];
    for &v in image.as_raw() {
        hist[usize::from(v)] += 1;
    }
    let total = image.as_raw().len() as u64;
    let mut cdf = [0u64; 256];
    let mut acc = 0;
    for (c, h) in cdf.iter_mut().zip(hist) {
        acc += h;
        *c = acc;
    }
    let lowest = cdf.iter().copied().find(|&c| c > 0).unwrap_or(0);
    let span = (total - lowest).max(1);
    let mut out = image.clone();
    for v in out.iter_mut() {
        // (cdf − lowest) / span ∈ [0, 1]: the cast cannot truncate.
        *v = ((cdf[usize::from(*v)] - lowest) * 255 / span) as u8;
    }
    out
}

/// Contrast-limited adaptive histogram equalisation (Zuiderveld 1994): the image cut
/// into `tiles × tiles` tiles, each tile's histogram clipped at `clip` times its mean
/// bin count (the excess spread over all bins) and equalised, and each pixel mapped by
/// the four nearest tiles' mappings, weighted bilinearly by its distance to their
/// centres. The half of a face in shadow has its contrast raised where it is, whatever
/// its share of the image's pixels (which is all a global equalisation goes by). An
/// image smaller than `tiles` on a side is returned as it is.
pub fn clahe(image: &GrayImage, tiles: u32, clip: f32) -> GrayImage {
    let (w, h) = image.dimensions();
    if tiles == 0 || w < tiles || h < tiles {
        return image.clone();
    }
    // Tile `t` spans [t·side/tiles, (t+1)·side/tiles).
    let bound = |t: u32, side: u32| (u64::from(t) * u64::from(side) / u64::from(tiles)) as u32;
    let mut maps = Vec::with_capacity((tiles * tiles) as usize);
    for ty in 0..tiles {
        for tx in 0..tiles {
            let (x0, x1) = (bound(tx, w), bound(tx + 1, w));
            let (y0, y1) = (bound(ty, h), bound(ty + 1, h));
            let mut hist = [0f32; 256];
            for y in y0..y1 {
                for x in x0..x1 {
                    hist[usize::from(image.get_pixel(x, y)[0])] += 1.0;
                }
            }
            let count = ((x1 - x0) * (y1 - y0)) as f32;
            let limit = clip * count / 256.0;
            let excess: f32 = hist.iter().map(|&v| (v - limit).max(0.0)).sum();
            let mut map = [0f32; 256];
            let mut acc = 0.0;
            for (m, v) in map.iter_mut().zip(hist) {
                acc += v.min(limit) + excess / 256.0;
                *m = 255.0 * acc / count;
            }
            maps.push(map);
        }
    }
    // A pixel's position in tile-centre coordinates: tile t's centre is at t.
    let last = (tiles - 1) as f32;
    let at = |v: u32, side: u32| {
        let f = ((v as f32 + 0.5) * tiles as f32 / side as f32 - 0.5).clamp(0.0, last);
        let i = f.floor();
        // 0 ≤ i ≤ tiles − 1.
        (i as u32, ((i as u32) + 1).min(tiles - 1), f - i)
    };
    let mut out = image.clone();
    for (x, y, p) in out.enumerate_pixels_mut() {
        let v = usize::from(p[0]);
        let (x0, x1, ax) = at(x, w);
        let (y0, y1, ay) = at(y, h);
        let m = |tx: u32, ty: u32| maps[(ty * tiles + tx) as usize][v];
        let top = (1.0 - ax) * m(x0, y0) + ax * m(x1, y0);
        let bottom = (1.0 - ax) * m(x0, y1) + ax * m(x1, y1);
        // A convex combination of values in [0, 255].
        p[0] = ((1.0 - ay) * top + ay * bottom).round().clamp(0.0, 255.0) as u8;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equalisation_spreads_a_dark_image_over_the_whole_range() {
        let dark = GrayImage::from_fn(16, 16, |x, y| image::Luma([((x + y) / 2) as u8]));
        let out = equalised(&dark);
        assert_eq!(out.as_raw().iter().min(), Some(&0));
        assert_eq!(out.as_raw().iter().max(), Some(&255));
    }

    #[test]
    fn clahe_brings_a_shadowed_half_up_to_the_lit_halfs_contrast() {
        // The same texture, at full contrast on the right and a tenth of it on the left.
        let texture = |x: u32, y: u32| ((x * 7 + y * 13) % 50) as f32 / 50.0;
        let image = GrayImage::from_fn(64, 64, |x, y| {
            let gain = if x < 32 { 20.0 } else { 200.0 };
            image::Luma([(gain * texture(x, y)) as u8])
        });
        let spread = |img: &GrayImage, xs: std::ops::Range<u32>| {
            let values: Vec<u8> = xs
                .flat_map(|x| (0..64).map(move |y| (x, y)))
                .map(|(x, y)| img.get_pixel(x, y)[0])
                .collect();
            f32::from(*values.iter().max().unwrap()) - f32::from(*values.iter().min().unwrap())
        };
        let out = clahe(&image, 4, 2.0);
        let (before, after) = (spread(&image, 0..16), spread(&out, 0..16));
        // Clipped at twice the mean bin count, a tile's mapping is at most about twice
        // as steep as the identity: the shadowed texture's contrast at least doubles.
        assert!(
            before < 25.0 && after >= 2.0 * before,
            "{before} -> {after}"
        );
        // The lit half keeps its full range.
        assert!(spread(&out, 48..64) >= spread(&image, 48..64) * 0.9);
    }

    #[test]
    fn clahe_leaves_images_smaller_than_its_grid_alone() {
        let tiny = GrayImage::from_fn(3, 9, |x, y| image::Luma([(x * 9 + y) as u8]));
        assert_eq!(clahe(&tiny, 4, 2.0), tiny);
    }
}
