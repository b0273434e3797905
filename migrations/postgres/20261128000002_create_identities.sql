-- An identity is one enrolled person, named by the client's external id (unique within
-- its gallery). Metadata is the client's JSON object, stored as text (not JSONB: the
-- `Any` driver decodes text on both backends, and the server never queries inside it).
CREATE TABLE identities (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    gallery_id  BIGINT NOT NULL REFERENCES galleries (id) ON DELETE CASCADE,
    external_id TEXT   NOT NULL,
    metadata    TEXT,
    created_at  BIGINT NOT NULL,
    UNIQUE (gallery_id, external_id)
);
