-- Server-side secrets: per-environment data keys wrapped by the master key,
-- and every version of every secret, sealed under its environment's data key.
-- The store never holds a plaintext value or an unwrapped key.

CREATE TABLE env_keys (
    environment   TEXT    NOT NULL PRIMARY KEY REFERENCES environments (name),
    wrapped       BLOB    NOT NULL,
    -- which master key wrapped it, so a rotation can proceed row by row and
    -- a server started with the wrong key says so instead of failing to open
    master_key_id TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;

-- Versions are kept; a deletion is a tombstone version, so a secret's
-- history and the audit log agree and version numbers never repeat.
CREATE TABLE secrets (
    environment TEXT    NOT NULL REFERENCES environments (name),
    name        TEXT    NOT NULL,
    version     INTEGER NOT NULL CHECK (version >= 1),
    ciphertext  BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  TEXT    NOT NULL,
    deleted     INTEGER NOT NULL CHECK (deleted IN (0, 1)),
    PRIMARY KEY (environment, name, version)
) STRICT;
