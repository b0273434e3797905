//! Errors of the store.

/// Anything that can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL {url:?} names no supported backend: expected sqlite://… or postgres://…")]
    UnsupportedUrl { url: String },
    #[error(
        "cannot create the SQLite file {file}: its directory {dir} does not exist (create \
         it, or point database.url at an existing directory)"
    )]
    MissingDirectory { file: String, dir: String },
    #[error(
        "no database server answered at {address} within {seconds} s (a direct attempt: \
         {reason}); start it, or correct database.url"
    )]
    Unreachable {
        address: String,
        seconds: u64,
        reason: String,
    },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("face {face}: stored embedding {reason}")]
    CorruptEmbedding { face: i64, reason: String },
    #[error("metadata of identity {identity} is not a JSON object: {reason}")]
    CorruptMetadata { identity: i64, reason: String },
}
