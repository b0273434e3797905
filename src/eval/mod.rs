//! Open-set evaluation: metrics, threshold calibration, the protocol and baselines.
//!
//! Embeddings are rows of `(N, K)` arrays compared by cosine similarity; identity labels
//! are `usize`. An identity's score for a probe is its best enrolled face
//! ([`IdentityScores`]). Definitions of every metric are in [`metrics`], of the
//! thresholds in [`calibrate`](mod@calibrate), of the open-set protocol in
//! [`protocol`], of the LFW pairs protocol in [`pairs`] and [`verification`].

pub mod baselines;
pub mod calibrate;
pub mod command;
pub mod compare;
pub mod error;
pub mod metrics;
pub mod pairs;
pub mod plot;
pub mod promise;
pub mod protocol;
pub mod report;
pub mod scores;
pub mod tail;
pub mod verification;

pub use baselines::{Eigenfaces, Fisherfaces, RawPixels};
pub use calibrate::{Threshold, calibrate};
pub use compare::baseline_reports;
pub use error::{EvalError, Result};
pub use metrics::{AtFar, RocPoint, dir_at_far, eer, rank1, roc, tar_at_far};
pub use pairs::{Pair, PairsFile, Photo};
pub use protocol::{ProtocolConfig, ProtocolReport, open_set_protocol};
pub use scores::IdentityScores;
pub use verification::{FoldAccuracy, FoldedAccuracy, ScoredPair, folded_accuracy};
