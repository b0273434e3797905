-- The change log that replicas follow to keep their in-memory indexes in step: one row
-- per face added or removed, identity removed, or gallery changed, written in the same
-- transaction as the change itself. Rows carry no data; a follower reads the current
-- state of what a row names (so applying a row twice, or out of order, is harmless).
--
-- `txid` is the writing transaction's id. Identity values can commit out of order, so a
-- follower does not poll `id > last`; it re-reads rows with `txid >= xmin`, where xmin
-- (`pg_snapshot_xmin`) was taken before its previous read: every transaction with a
-- smaller id had finished by then, so its rows were already seen. `origin` names the
-- process that wrote the row, which has already applied it to its own index.
-- No foreign keys: a row outlives the identity or face it names.
CREATE TABLE changes (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txid        BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    kind        TEXT   NOT NULL,
    gallery_id  BIGINT NOT NULL,
    identity_id BIGINT,
    face_id     BIGINT,
    origin      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Followers read by transaction id; pruning deletes by age.
CREATE INDEX changes_txid ON changes (txid);
CREATE INDEX changes_created_at ON changes (created_at);

-- Wake followers at commit (NOTIFY is delivered only when the transaction commits, and
-- identical notifications of one transaction are folded into one).
CREATE FUNCTION faceprint_notify_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('faceprint_changes', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER changes_notify AFTER INSERT ON changes
    FOR EACH STATEMENT EXECUTE FUNCTION faceprint_notify_changes();
