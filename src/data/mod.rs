//! Image folders, decoding, preprocessing, augmentation and sampling.
//!
//! The path of a training image: [`ImageFolder::scan`] decodes it to greyscale;
//! [`Preprocessing::resize`] brings it to the model's `(H, W)` in [0, 1];
//! [`Augmentation`] perturbs it (training only); [`Preprocessing::normalise`] applies the
//! photometric normalisation fitted by [`PreprocessingSpec::fit`]. The server runs
//! [`Preprocessing::apply`], the same steps without augmentation.
//!
//! Shapes: `N` images, `H×W` pixels (`D = H·W` flattened), `K` whitening components.

pub mod augment;
pub mod error;
pub mod faces;
pub mod folder;
pub mod linalg;
pub mod preprocess;
pub mod report;
pub mod sampler;
pub mod split;

pub use augment::Augmentation;
pub use error::{DataError, Result};
pub use faces::{FaceCropReport, Pick, crop_faces, face_crop};
pub use folder::{ImageFolder, ScanOptions};
pub use preprocess::{
    Normalisation, NormalisationKind, Preprocessing, PreprocessingSpec, StoredArray, TanTriggs,
    Whitening,
};
pub use report::ScanReport;
pub use sampler::PkSampler;
pub use split::{SplitSize, split_identities};
