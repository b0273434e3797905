//! Line plots as PNG, drawn with `image` alone: axes with ticks and grid, one coloured
//! polyline per series, a legend and a title in a built-in 5×7 bitmap font.
//!
//! Why not `plotters`: its text needs a system font (or a font file we would ship) and
//! pulls in a larger dependency tree; these plots need lines, ticks and short labels
//! only, which a few hundred lines draw with no font and no new crate.

mod font;

use std::path::Path;

use image::{Rgb, RgbImage};

use super::error::{EvalError, Result};

const WIDTH: u32 = 800;
const HEIGHT: u32 = 500;
const LEFT: i64 = 90;
const RIGHT: i64 = 20;
const TOP: i64 = 44;
const BOTTOM: i64 = 56;
/// Glyph pixels are drawn as `SCALE × SCALE` squares.
const SCALE: i64 = 2;
const ADVANCE: i64 = 6 * SCALE;
const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const BLACK: Rgb<u8> = Rgb([0, 0, 0]);
const GRID: Rgb<u8> = Rgb([225, 225, 225]);
/// Series colours (the "tab10" palette), reused cyclically.
const PALETTE: [[u8; 3]; 8] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
];

/// One named polyline; non-finite points break the line.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.into(),
            points,
        }
    }
}

/// Axis labels for [`lines_with`].
#[derive(Debug, Clone, Default)]
pub struct Axes {
    pub x_label: String,
    pub y_label: String,
}

/// Writes a PNG line plot of `series` to `path`, axes fitted to the data.
pub fn lines(path: &Path, title: &str, series: &[Series]) -> Result<()> {
    lines_with(path, title, &Axes::default(), series)
}

/// [`lines`] with axis labels.
pub fn lines_with(path: &Path, title: &str, axes: &Axes, series: &[Series]) -> Result<()> {
    render(title, axes, series)
        .save(path)
        .map_err(|e| EvalError::Output {
            path: path.display().to_string(),
            message: e.to_string(),
        })
}

/// Draws the plot in memory.
pub fn render(title: &str, axes: &Axes, series: &[Series]) -> RgbImage {
    let mut img = RgbImage::from_pixel(WIDTH, HEIGHT, WHITE);
    let finite = series
        .iter()
        .flat_map(|s| &s.points)
        .filter(|(x, y)| x.is_finite() && y.is_finite());
    let (xs, ys): (Vec<f64>, Vec<f64>) = finite.copied().unzip();
    let (x_ticks, x_lo, x_hi) = ticks(&xs);
    let (y_ticks, y_lo, y_hi) = ticks(&ys);
    let (right, bottom) = (WIDTH as i64 - RIGHT, HEIGHT as i64 - BOTTOM);
    let px = |x: f64| LEFT + ((x - x_lo) / (x_hi - x_lo) * (right - LEFT) as f64).round() as i64;
    let py = |y: f64| bottom - ((y - y_lo) / (y_hi - y_lo) * (bottom - TOP) as f64).round() as i64;

    for &t in &x_ticks {
        line(&mut img, (px(t), TOP), (px(t), bottom), GRID, 1);
        let label = tick_label(t, &x_ticks);
        text(
            &mut img,
            px(t) - text_width(&label) / 2,
            bottom + 8,
            &label,
            BLACK,
        );
    }
    for &t in &y_ticks {
        line(&mut img, (LEFT, py(t)), (right, py(t)), GRID, 1);
        let label = tick_label(t, &y_ticks);
        text(
            &mut img,
            LEFT - 8 - text_width(&label),
            py(t) - 7,
            &label,
            BLACK,
        );
    }
    line(&mut img, (LEFT, bottom), (right, bottom), BLACK, 1);
    line(&mut img, (LEFT, TOP), (LEFT, bottom), BLACK, 1);
    text(
        &mut img,
        (WIDTH as i64 - text_width(title)) / 2,
        12,
        title,
        BLACK,
    );
    let x_label_x = (LEFT + right - text_width(&axes.x_label)) / 2;
    text(&mut img, x_label_x, bottom + 32, &axes.x_label, BLACK);
    text(&mut img, 8, TOP - 30, &axes.y_label, BLACK);

    let mut drawn: Vec<(i64, i64)> = Vec::new();
    for (i, s) in series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        let colour = Rgb(c);
        let mut previous: Option<(i64, i64)> = None;
        for &(x, y) in &s.points {
            if !(x.is_finite() && y.is_finite()) {
                previous = None;
                continue;
            }
            let p = (px(x), py(y));
            drawn.push(p);
            if let Some(q) = previous {
                line(&mut img, q, p, colour, 2);
            } else if s.points.len() == 1 {
                line(&mut img, p, p, colour, 4);
            }
            previous = Some(p);
        }
    }
    legend(&mut img, (right, bottom), series, &drawn);
    img
}

/// Legend in a framed white box, one row per series, in the right-hand corner (top or
/// bottom) that hides fewer of the `drawn` data points.
fn legend(
    img: &mut RgbImage,
    (right, bottom): (i64, i64),
    series: &[Series],
    drawn: &[(i64, i64)],
) {
    if series.is_empty() {
        return;
    }
    let widest = series
        .iter()
        .map(|s| text_width(&s.name))
        .max()
        .unwrap_or(0);
    let (w, h) = (widest + 50, 18 * series.len() as i64 + 10);
    let x0 = right - 8 - w;
    let hidden = |y0: i64| {
        drawn
            .iter()
            .filter(|(x, y)| (x0..=x0 + w).contains(x) && (y0..=y0 + h).contains(y))
            .count()
    };
    let (top, low) = (TOP + 6, bottom - 6 - h);
    let y0 = if hidden(low) < hidden(top) { low } else { top };
    for y in y0..y0 + h {
        line(img, (x0, y), (x0 + w, y), WHITE, 1);
    }
    for (a, b) in [
        ((0, 0), (w, 0)),
        ((w, 0), (w, h)),
        ((w, h), (0, h)),
        ((0, h), (0, 0)),
    ] {
        line(img, (x0 + a.0, y0 + a.1), (x0 + b.0, y0 + b.1), GRID, 1);
    }
    for (i, s) in series.iter().enumerate() {
        let colour = Rgb(PALETTE[i % PALETTE.len()]);
        let y = y0 + 6 + 18 * i as i64;
        line(img, (x0 + 8, y + 6), (x0 + 30, y + 6), colour, 3);
        text(img, x0 + 38, y, &s.name, BLACK);
    }
}

/// About five "nice" ticks (1, 2 or 5 × 10ᵏ apart) covering the values, and the axis
/// range they span. No values, or all equal, still give a usable axis.
fn ticks(values: &[f64]) -> (Vec<f64>, f64, f64) {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = match (lo.is_finite(), hi > lo) {
        (false, _) => (0.0, 1.0),
        (true, false) => (lo - 0.5, hi + 0.5),
        (true, true) => (lo, hi),
    };
    let raw = (hi - lo) / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).floor() * step;
    let last = (hi / step).ceil() * step;
    let count = ((last - first) / step).round() as usize;
    let ticks = (0..=count).map(|i| first + i as f64 * step).collect();
    (ticks, first, last)
}

/// A tick label with as many decimals as the tick spacing needs.
fn tick_label(value: f64, ticks: &[f64]) -> String {
    let step = match ticks {
        [a, b, ..] => (b - a).abs(),
        _ => 1.0,
    };
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let label = format!("{value:.decimals$}");
    if label
        .trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        label.trim_start_matches('-').to_string()
    } else {
        label
    }
}

fn text_width(s: &str) -> i64 {
    s.chars().count() as i64 * ADVANCE
}

/// Draws `s` with its top-left corner at `(x, y)`.
fn text(img: &mut RgbImage, x: i64, y: i64, s: &str, colour: Rgb<u8>) {
    for (i, c) in s.chars().enumerate() {
        let glyph = font::glyph(c);
        let left = x + i as i64 * ADVANCE;
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..5 {
                if bits & (0x10 >> col) != 0 {
                    square(
                        img,
                        left + col * SCALE,
                        y + row as i64 * SCALE,
                        SCALE,
                        colour,
                    );
                }
            }
        }
    }
}

/// A `size × size` square at `(x, y)`, clipped to the image.
fn square(img: &mut RgbImage, x: i64, y: i64, size: i64, colour: Rgb<u8>) {
    for dy in 0..size {
        for dx in 0..size {
            let (px, py) = (x + dx, y + dy);
            if px >= 0 && py >= 0 && px < img.width() as i64 && py < img.height() as i64 {
                img.put_pixel(px as u32, py as u32, colour);
            }
        }
    }
}

/// A Bresenham line `thickness` pixels wide.
fn line(img: &mut RgbImage, from: (i64, i64), to: (i64, i64), colour: Rgb<u8>, thickness: i64) {
    let (mut x, mut y) = from;
    let (dx, dy) = ((to.0 - x).abs(), -(to.1 - y).abs());
    let (sx, sy) = (if x < to.0 { 1 } else { -1 }, if y < to.1 { 1 } else { -1 });
    let mut err = dx + dy;
    let offset = thickness / 2;
    loop {
        square(img, x - offset, y - offset, thickness, colour);
        if (x, y) == to {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}
