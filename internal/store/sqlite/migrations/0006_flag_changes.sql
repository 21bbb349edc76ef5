-- Flag change requests: a change of one flag of a restricted environment
-- waiting for the environment's approvals. The request (change, resulting
-- override, approval gate, approvals given) is JSON in data; the columns
-- beside it are what queries select on.

CREATE TABLE flag_changes (
    id          TEXT    NOT NULL PRIMARY KEY,
    seq         INTEGER NOT NULL UNIQUE,
    environment TEXT    NOT NULL REFERENCES environments (name),
    flag_key    TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    data        TEXT    NOT NULL
) STRICT;

CREATE INDEX flag_changes_environment ON flag_changes (environment, state, flag_key);
