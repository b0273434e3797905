-- Galleries partition identities: each gallery has its own index and may set its own
-- open-set threshold (cosine similarity); NULL means "use the model's calibrated default".
-- Times are BIGINT milliseconds since the Unix epoch so that sqlx's `Any` driver can
-- decode them on both backends.
CREATE TABLE galleries (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT   NOT NULL UNIQUE,
    threshold  DOUBLE PRECISION,
    created_at BIGINT NOT NULL
);
