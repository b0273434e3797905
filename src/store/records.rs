//! Rows going into and coming out of the store.

use crate::embedding::Embedding;

/// A gallery: a named set of identities with its own index and optional threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct Gallery {
    pub id: i64,
    pub name: String,
    /// Cosine-similarity threshold overriding the model's default; `None` = default.
    pub threshold: Option<f64>,
    /// Target false-accept rate overriding the server's default; `None` = default.
    pub far: Option<f64>,
    pub created_at: i64,
}

/// One face to store: its embedding and where it came from.
#[derive(Clone, Debug)]
pub struct NewFace {
    /// Its embedding, `dim` values.
    pub embedding: Embedding,
    /// Hex SHA-256 of the uploaded image bytes.
    pub image_sha256: String,
    /// The uploaded image, kept when the server is configured to (for `reembed`).
    pub image: Option<Vec<u8>>,
}

/// One enrollment: faces added to an identity (created if new) in a gallery (created if new).
#[derive(Clone, Debug)]
pub struct NewEnrollment {
    pub gallery: String,
    pub external_id: String,
    /// A JSON object as text; `None` keeps an existing identity's metadata.
    pub metadata: Option<String>,
    pub model_version: String,
    pub faces: Vec<NewFace>,
}

/// What an enrollment committed.
#[derive(Clone, Debug, PartialEq)]
pub struct Enrolled {
    pub gallery_id: i64,
    pub identity_id: i64,
    /// True when this enrollment created the identity.
    pub created: bool,
    /// Ids of the new faces, in the order they were given.
    pub face_ids: Vec<i64>,
}

/// An identity in a listing.
#[derive(Clone, Debug, PartialEq)]
pub struct IdentitySummary {
    pub id: i64,
    pub external_id: String,
    pub face_count: i64,
    pub created_at: i64,
}

/// A face as shown to clients (no embedding, no image).
#[derive(Clone, Debug, PartialEq)]
pub struct FaceRecord {
    pub id: i64,
    pub model_version: String,
    pub image_sha256: String,
    pub has_image: bool,
    pub created_at: i64,
}

/// An identity with its metadata and faces.
#[derive(Clone, Debug, PartialEq)]
pub struct IdentityDetail {
    pub id: i64,
    pub external_id: String,
    /// The JSON object given at enrollment, if any.
    pub metadata: Option<serde_json::Value>,
    pub created_at: i64,
    pub faces: Vec<FaceRecord>,
}

/// What deleting an identity removed.
#[derive(Clone, Debug, PartialEq)]
pub struct RemovedIdentity {
    pub identity_id: i64,
    pub face_ids: Vec<i64>,
}

/// A face as the index needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredFace {
    pub id: i64,
    pub identity_id: i64,
    pub embedding: Embedding,
}

/// A stored image awaiting re-embedding.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredImage {
    pub face_id: i64,
    pub image: Vec<u8>,
}
