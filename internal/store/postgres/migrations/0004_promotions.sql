-- Promotions. An environment keeps its promotion block (the gates of the
-- release current in it) as JSON; NULL for none, or for environments stored
-- before this migration (the app then reads it from the current release).
-- A promotion keeps its frozen gates and progress as JSON in data; the
-- columns beside it are what queries select on.

ALTER TABLE environments ADD COLUMN gates text;

CREATE TABLE promotions (
    id          text        NOT NULL PRIMARY KEY,
    seq         bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    environment text        NOT NULL REFERENCES environments (name),
    release     text        NOT NULL REFERENCES releases (id),
    state       text        NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    data        text        NOT NULL
);

CREATE INDEX promotions_environment ON promotions (environment, state);
CREATE INDEX promotions_state ON promotions (state);
