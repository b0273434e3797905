-- The change log that replicas follow (see the PostgreSQL migration of the same name).
-- A SQLite database is served by one process, which needs no follower: the table exists
-- so both schemas stay the same, and the store writes to it only on PostgreSQL.
CREATE TABLE changes (
    id          INTEGER PRIMARY KEY,
    txid        BIGINT  NOT NULL DEFAULT 0,
    kind        TEXT    NOT NULL,
    gallery_id  BIGINT  NOT NULL,
    identity_id BIGINT,
    face_id     BIGINT,
    origin      TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);

CREATE INDEX changes_txid ON changes (txid);
CREATE INDEX changes_created_at ON changes (created_at);
