-- Galleries partition identities: each gallery has its own index and may set its own
-- open-set threshold (cosine similarity); NULL means "use the model's calibrated default".
-- Times are BIGINT milliseconds since the Unix epoch so that sqlx's `Any` driver can
-- decode them on both backends.
CREATE TABLE galleries (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    threshold  REAL,
    created_at BIGINT  NOT NULL
);
