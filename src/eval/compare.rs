//! The classical baselines under the open-set protocol, ready for a report beside a
//! trained model: fitted on a training folder, judged on a folder of other identities.

use ndarray::Array2;

use super::baselines::{Eigenfaces, Fisherfaces, RawPixels, flatten};
use super::error::Result;
use super::protocol::{ProtocolConfig, ProtocolReport, open_set_protocol};
use crate::data::{ImageFolder, Preprocessing};

/// Eigenfaces keep this many components (or fewer, if the training set has fewer).
pub const EIGENFACES_COMPONENTS: usize = 100;

/// `(name, report)` for raw pixels, Eigenfaces, Fisherfaces as published (PCA to
/// `N − c`) and Fisherfaces on the Eigenfaces subspace (PCA to
/// [`EIGENFACES_COMPONENTS`]): each is fitted on
/// `train` (preprocessed with `preprocessing`), embeds `test`, and runs
/// [`open_set_protocol`] with `config`.
pub fn baseline_reports(
    train: &ImageFolder,
    test: &ImageFolder,
    preprocessing: &Preprocessing,
    config: &ProtocolConfig,
) -> Result<Vec<(String, ProtocolReport)>> {
    let x_train = rows(train, preprocessing)?;
    let x_test = rows(test, preprocessing)?;
    let labels = test.labels();
    let eigen = Eigenfaces::fit(x_train.view(), EIGENFACES_COMPONENTS)?;
    let fisher = Fisherfaces::fit(x_train.view(), train.labels(), None)?;
    let fisher_pca = Fisherfaces::fit(x_train.view(), train.labels(), Some(EIGENFACES_COMPONENTS))?;
    let embeddings = [
        ("raw pixels".to_string(), RawPixels.embed(x_test.view())?),
        (
            format!("eigenfaces ({})", eigen.dim()),
            eigen.embed(x_test.view())?,
        ),
        (
            "fisherfaces (pca N-c)".to_string(),
            fisher.embed(x_test.view())?,
        ),
        (
            format!("fisherfaces (pca {EIGENFACES_COMPONENTS})"),
            fisher_pca.embed(x_test.view())?,
        ),
    ];
    embeddings
        .into_iter()
        .map(|(name, e)| Ok((name, open_set_protocol(e.view(), labels, config)?)))
        .collect()
}

/// Preprocessed images of `folder` as rows `(N, D)`.
pub fn rows(folder: &ImageFolder, preprocessing: &Preprocessing) -> Result<Array2<f32>> {
    flatten(&preprocessing.batch(folder.images())?)
}
