-- Flag overrides: one flag of one environment changed without a release
-- (state, default variant, targeting; NULL keeps the release's). Kept while
-- new releases keep the flag's variants (variants_digest).

CREATE TABLE flag_overrides (
    environment     TEXT    NOT NULL REFERENCES environments (name),
    flag_key        TEXT    NOT NULL,
    state           TEXT    CHECK (state IN ('ENABLED', 'DISABLED')),
    default_variant TEXT,
    targeting       TEXT,
    variants_digest TEXT    NOT NULL,
    updated_at      INTEGER NOT NULL,
    updated_by      TEXT    NOT NULL,
    PRIMARY KEY (environment, flag_key)
) STRICT;
