-- Flag change requests: a change of one flag of a restricted environment
-- waiting for the environment's approvals. The request (change, resulting
-- override, approval gate, approvals given) is JSON in data; the columns
-- beside it are what queries select on.

CREATE TABLE flag_changes (
    id          text        NOT NULL PRIMARY KEY,
    seq         bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    environment text        NOT NULL REFERENCES environments (name),
    flag_key    text        NOT NULL,
    state       text        NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    data        text        NOT NULL
);

CREATE INDEX flag_changes_environment ON flag_changes (environment, state, flag_key);
