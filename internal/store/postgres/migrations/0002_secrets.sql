-- Server-side secrets: per-environment data keys wrapped by the master key,
-- and every version of every secret, sealed under its environment's data key.
-- The store never holds a plaintext value or an unwrapped key.

CREATE TABLE env_keys (
    environment   text        NOT NULL PRIMARY KEY REFERENCES environments (name),
    wrapped       bytea       NOT NULL,
    -- which master key wrapped it, so a rotation can proceed row by row and
    -- a server started with the wrong key says so instead of failing to open
    master_key_id text        NOT NULL,
    created_at    timestamptz NOT NULL
);

-- Versions are kept; a deletion is a tombstone version, so a secret's
-- history and the audit log agree and version numbers never repeat.
CREATE TABLE secrets (
    environment text        NOT NULL REFERENCES environments (name),
    name        text        NOT NULL,
    version     integer     NOT NULL CHECK (version >= 1),
    ciphertext  bytea       NOT NULL,
    created_at  timestamptz NOT NULL,
    created_by  text        NOT NULL,
    deleted     boolean     NOT NULL,
    PRIMARY KEY (environment, name, version)
);
