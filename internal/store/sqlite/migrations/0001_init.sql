-- Releases, environments and their history, tokens and the audit log.
-- Times are INTEGER microseconds since the Unix epoch: exact and ordered.
-- JSON columns (labels, environments, groups) hold the encoding of a Go value,
-- "null" for nil, so nil and empty round-trip distinctly.

CREATE TABLE releases (
    id         TEXT    NOT NULL PRIMARY KEY,
    -- insertion order, for "newest first"; rowid is not stable across VACUUM
    seq        INTEGER NOT NULL UNIQUE,
    digest     TEXT    NOT NULL UNIQUE,
    labels     TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT    NOT NULL
) STRICT;

CREATE TABLE release_files (
    release_id TEXT NOT NULL REFERENCES releases (id),
    path       TEXT NOT NULL,
    content    BLOB NOT NULL,
    PRIMARY KEY (release_id, path)
) STRICT;

CREATE TABLE environments (
    name       TEXT    NOT NULL PRIMARY KEY,
    position   INTEGER NOT NULL,
    protection TEXT    NOT NULL,
    data       TEXT    NOT NULL,
    promoted   INTEGER NOT NULL CHECK (promoted IN (0, 1)),
    release    TEXT    REFERENCES releases (id),
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE assignments (
    id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    environment TEXT    NOT NULL REFERENCES environments (name),
    release     TEXT    NOT NULL REFERENCES releases (id),
    previous    TEXT    REFERENCES releases (id),
    actor       TEXT    NOT NULL,
    at          INTEGER NOT NULL
) STRICT;

CREATE INDEX assignments_environment ON assignments (environment, id);

CREATE TABLE tokens (
    id           TEXT    NOT NULL PRIMARY KEY,
    name         TEXT    NOT NULL,
    hash         TEXT    NOT NULL UNIQUE,
    role         TEXT    NOT NULL,
    environments TEXT    NOT NULL,
    "groups"     TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    created_by   TEXT    NOT NULL
) STRICT;

-- details is TEXT, never parsed: the chain hash covers its exact bytes.
CREATE TABLE audit (
    seq       INTEGER NOT NULL PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    target    TEXT    NOT NULL,
    details   TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
) STRICT;
