//! Reading the PyTorch fixtures and comparing tensors with them.
//!
//! Relative error of an element: |a − b| / max(|b|, floor) with b the reference and
//! floor = max(rms(b), abs_floor). Elements at least as large as the tensor's RMS are
//! compared relatively; smaller ones (whose rounding error comes from the same terms
//! as the large ones', not from their own size) relative to the RMS. `abs_floor`
//! covers tensors whose exact value is 0, like the gradient of a bias feeding a batch
//! norm: there the engine's rounding noise is measured against `abs_floor`.

use faceprint::nn::Tensor;
use ndarray::{ArrayD, IxDyn};
use safetensors::{Dtype, SafeTensors};

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/torch");

/// One fixture file, read once.
pub struct Fixture {
    name: String,
    bytes: Vec<u8>,
}

impl Fixture {
    pub fn load(file: &str) -> Fixture {
        let path = format!("{FIXTURES}/{file}");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!("{path}: {e} (regenerate with: python scripts/torch_reference.py)")
        });
        Fixture {
            name: file.into(),
            bytes,
        }
    }

    fn view(&self) -> SafeTensors<'_> {
        SafeTensors::deserialize(&self.bytes)
            .unwrap_or_else(|e| panic!("{}: not a safetensors file: {e}", self.name))
    }

    /// A float tensor (F32, or F16 widened exactly to f32).
    pub fn tensor(&self, key: &str) -> Tensor {
        let view = self.view();
        let t = view
            .tensor(key)
            .unwrap_or_else(|e| panic!("{}: no tensor {key}: {e}", self.name));
        let values: Vec<f32> = match t.dtype() {
            Dtype::F32 => t
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => t
                .data()
                .chunks_exact(2)
                .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
            Dtype::U8 => t.data().iter().map(|&b| f32::from(b)).collect(),
            other => panic!("{}: {key} has dtype {other:?}, expected a float", self.name),
        };
        ArrayD::from_shape_vec(IxDyn(t.shape()), values).expect("shape matches data")
    }

    /// An I64 tensor as indices.
    pub fn indices(&self, key: &str) -> Vec<usize> {
        let view = self.view();
        let t = view
            .tensor(key)
            .unwrap_or_else(|e| panic!("{}: no tensor {key}: {e}", self.name));
        assert_eq!(t.dtype(), Dtype::I64, "{key}");
        t.data()
            .chunks_exact(8)
            .map(|b| {
                let v = i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                usize::try_from(v).expect("non-negative index")
            })
            .collect()
    }

    /// The single element of a one-element float tensor.
    pub fn scalar(&self, key: &str) -> f32 {
        let t = self.tensor(key);
        assert_eq!(t.len(), 1, "{key} is not a scalar");
        t.iter().copied().sum()
    }

    /// A value from the header's metadata.
    pub fn meta(&self, key: &str) -> String {
        let (_, header) = SafeTensors::read_metadata(&self.bytes).expect("header");
        header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(key).cloned())
            .unwrap_or_else(|| panic!("{}: no metadata {key}", self.name))
    }
}

/// IEEE 754 binary16 → binary32, exactly (every f16 value is an f32 value).
pub fn f16_to_f32(bits: u16) -> f32 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let mantissa = f32::from(bits & 0x3ff);
    sign * match exponent {
        0 => mantissa * 2f32.powi(-24),
        31 if mantissa == 0.0 => f32::INFINITY,
        31 => f32::NAN,
        e => (1.0 + mantissa / 1024.0) * 2f32.powi(e - 15),
    }
}

/// Collects the comparisons of one test and fails once, listing every failure.
#[derive(Default)]
pub struct Report {
    failures: Vec<String>,
    compared: usize,
    /// The largest relative error seen, and where.
    worst: (f64, String),
}

impl Report {
    /// Compares `actual` with the reference `expected` (see the module doc for the
    /// measure); records a failure with the first mismatches and the largest error.
    pub fn tensor(
        &mut self,
        what: &str,
        actual: &Tensor,
        expected: &Tensor,
        tol: f64,
        abs_floor: f64,
    ) {
        self.compared += 1;
        if actual.shape() != expected.shape() {
            self.failures.push(format!(
                "{what}: shape {:?}, expected {:?}",
                actual.shape(),
                expected.shape()
            ));
            return;
        }
        let n = expected.len().max(1) as f64;
        let rms = (expected.iter().map(|&b| f64::from(b).powi(2)).sum::<f64>() / n).sqrt();
        let floor = rms.max(abs_floor).max(1e-30);
        let mut bad = Vec::new();
        let mut worst = (0.0_f64, 0, 0.0, 0.0);
        for (i, (&a, &b)) in actual.iter().zip(expected).enumerate() {
            let (a, b) = (f64::from(a), f64::from(b));
            let err = (a - b).abs() / b.abs().max(floor);
            if err.is_nan() || err > worst.0 {
                worst = (err, i, a, b);
            }
            let ok = err <= tol; // false for NaN
            if !ok {
                bad.push(format!(
                    "    [{i}] got {a:.7e}, expected {b:.7e} (rel {err:.2e})"
                ));
            }
        }
        if worst.0 > self.worst.0 || worst.0.is_nan() {
            self.worst = (worst.0, what.to_string());
        }
        if !bad.is_empty() {
            self.failures.push(format!(
                "{what}: {} of {} elements off by more than {tol:.0e} (floor {floor:.2e}); first:\n{}\n  largest: [{}] got {:.7e}, expected {:.7e} (rel {:.2e})",
                bad.len(),
                expected.len(),
                bad.iter().take(5).cloned().collect::<Vec<_>>().join("\n"),
                worst.1,
                worst.2,
                worst.3,
                worst.0
            ));
        }
    }

    pub fn scalar(&mut self, what: &str, actual: f32, expected: f32, tol: f64) {
        let wrap = |v: f32| ArrayD::from_elem(IxDyn(&[1]), v);
        self.tensor(what, &wrap(actual), &wrap(expected), tol, 0.0);
    }

    pub fn count(&mut self, what: &str, actual: usize, expected: usize) {
        self.compared += 1;
        if actual != expected {
            self.failures
                .push(format!("{what}: {actual}, expected {expected}"));
        }
    }

    /// Prints the largest relative error since the last checkpoint (a group of values,
    /// e.g. the forward ones) and starts a new group.
    pub fn checkpoint(&mut self, group: &str) {
        println!(
            "{group}: largest relative error {:.2e} ({})",
            self.worst.0, self.worst.1
        );
        self.worst = (0.0, String::new());
    }

    /// Panics with every failure, or prints how many comparisons passed.
    pub fn finish(self, test: &str) {
        assert!(
            self.failures.is_empty(),
            "{test}: {} of {} comparisons failed:\n{}",
            self.failures.len(),
            self.compared,
            self.failures.join("\n")
        );
        println!(
            "{test}: all {} comparisons agree; largest relative error {:.2e} ({})",
            self.compared, self.worst.0, self.worst.1
        );
    }
}
