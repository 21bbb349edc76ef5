-- Flag overrides: one flag of one environment changed without a release
-- (state, default variant, targeting; NULL keeps the release's). Kept while
-- new releases keep the flag's variants (variants_digest).

CREATE TABLE flag_overrides (
    environment     text        NOT NULL REFERENCES environments (name),
    flag_key        text        NOT NULL,
    state           text        CHECK (state IN ('ENABLED', 'DISABLED')),
    default_variant text,
    targeting       text,
    variants_digest text        NOT NULL,
    updated_at      timestamptz NOT NULL,
    updated_by      text        NOT NULL,
    PRIMARY KEY (environment, flag_key)
);
