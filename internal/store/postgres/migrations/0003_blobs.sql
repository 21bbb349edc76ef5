-- Release files are stored once per content: blobs holds each distinct
-- content under the hex SHA-256 of its bytes, and release_files references
-- it. A release that changes one file of a large workspace adds one blob.

CREATE TABLE blobs (
    digest  text  NOT NULL PRIMARY KEY,
    content bytea NOT NULL
);

INSERT INTO blobs (digest, content)
    SELECT encode(sha256(content), 'hex'), content FROM release_files
    ON CONFLICT (digest) DO NOTHING;

ALTER TABLE release_files ADD COLUMN blob text REFERENCES blobs (digest);
UPDATE release_files SET blob = encode(sha256(content), 'hex');
ALTER TABLE release_files ALTER COLUMN blob SET NOT NULL;
ALTER TABLE release_files DROP COLUMN content;
