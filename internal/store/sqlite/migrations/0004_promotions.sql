-- Promotions. An environment keeps its promotion block (the gates of the
-- release current in it) as JSON; NULL for none, or for environments stored
-- before this migration (the app then reads it from the current release).
-- A promotion keeps its frozen gates and progress as JSON in data; the
-- columns beside it are what queries select on.

ALTER TABLE environments ADD COLUMN gates TEXT;

CREATE TABLE promotions (
    id          TEXT    NOT NULL PRIMARY KEY,
    seq         INTEGER NOT NULL UNIQUE,
    environment TEXT    NOT NULL REFERENCES environments (name),
    release     TEXT    NOT NULL REFERENCES releases (id),
    state       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    data        TEXT    NOT NULL
) STRICT;

CREATE INDEX promotions_environment ON promotions (environment, state);
CREATE INDEX promotions_state ON promotions (state);
