-- Web UI sessions, shared by every replica: the cookie holds a random ID,
-- the row only its SHA-256, so reading the table gives no usable cookie. A
-- session ends at expires_at, at sign-out (deleted) or when its token is
-- revoked (deleted with it).

CREATE TABLE sessions (
    id_hash    text        NOT NULL PRIMARY KEY,
    token_id   text        NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    csrf       text        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE INDEX sessions_token ON sessions (token_id, created_at);
CREATE INDEX sessions_expires ON sessions (expires_at);
