-- Releases, environments and their history, tokens and the audit log.
-- JSON columns (labels, environments, groups) are text holding the encoding of
-- a Go value, "null" for nil, so nil and empty round-trip distinctly.

CREATE TABLE releases (
    id         text        NOT NULL PRIMARY KEY,
    -- insertion order, for "newest first" independent of clocks
    seq        bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    digest     text        NOT NULL UNIQUE,
    labels     text        NOT NULL,
    size       bigint      NOT NULL,
    created_at timestamptz NOT NULL,
    created_by text        NOT NULL
);

CREATE TABLE release_files (
    release_id text  NOT NULL REFERENCES releases (id),
    path       text  NOT NULL,
    content    bytea NOT NULL,
    PRIMARY KEY (release_id, path)
);

CREATE TABLE environments (
    name       text        NOT NULL PRIMARY KEY,
    position   integer     NOT NULL,
    protection text        NOT NULL,
    data       text        NOT NULL,
    promoted   boolean     NOT NULL,
    release    text        REFERENCES releases (id),
    updated_at timestamptz NOT NULL
);

CREATE TABLE assignments (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    environment text        NOT NULL REFERENCES environments (name),
    release     text        NOT NULL REFERENCES releases (id),
    previous    text        REFERENCES releases (id),
    actor       text        NOT NULL,
    at          timestamptz NOT NULL
);

CREATE INDEX assignments_environment ON assignments (environment, id);

CREATE TABLE tokens (
    id           text        NOT NULL PRIMARY KEY,
    name         text        NOT NULL,
    hash         text        NOT NULL UNIQUE,
    role         text        NOT NULL,
    environments text        NOT NULL,
    "groups"     text        NOT NULL,
    created_at   timestamptz NOT NULL,
    created_by   text        NOT NULL
);

-- details is text, never jsonb: the chain hash covers its exact bytes, and
-- timestamptz keeps the microseconds the hash was computed over.
CREATE TABLE audit (
    seq       bigint      NOT NULL PRIMARY KEY,
    at        timestamptz NOT NULL,
    actor     text        NOT NULL,
    action    text        NOT NULL,
    target    text        NOT NULL,
    details   text        NOT NULL,
    prev_hash text        NOT NULL,
    hash      text        NOT NULL
);
