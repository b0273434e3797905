-- One enrolled face: its embedding (f32 little-endian, `dim` × 4 bytes), the version of
-- the model that produced it (the server refuses to mix versions), the SHA-256 of the
-- uploaded image, and optionally the image itself so that `reembed` can recompute the
-- embedding when the model changes.
CREATE TABLE faces (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    identity_id   BIGINT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    embedding     BYTEA  NOT NULL,
    model_version TEXT   NOT NULL,
    image_sha256  TEXT   NOT NULL,
    image         BYTEA,
    created_at    BIGINT NOT NULL
);

-- Index builds and deletes walk faces by identity.
CREATE INDEX faces_identity_id ON faces (identity_id);
-- Start-up checks which model versions are present.
CREATE INDEX faces_model_version ON faces (model_version);
