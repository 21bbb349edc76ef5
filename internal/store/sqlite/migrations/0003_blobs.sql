-- Release files are stored once per content: blobs holds each distinct
-- content under the hex SHA-256 of its bytes, and release_files references
-- it. A release that changes one file of a large workspace adds one blob.
-- envplane_sha256 is registered by this package (sqlite.go).

CREATE TABLE blobs (
    digest  TEXT NOT NULL PRIMARY KEY,
    content BLOB NOT NULL
) STRICT;

INSERT OR IGNORE INTO blobs (digest, content)
    SELECT envplane_sha256(content), content FROM release_files;

CREATE TABLE release_files_blobs (
    release_id TEXT NOT NULL REFERENCES releases (id),
    path       TEXT NOT NULL,
    blob       TEXT NOT NULL REFERENCES blobs (digest),
    PRIMARY KEY (release_id, path)
) STRICT;

INSERT INTO release_files_blobs (release_id, path, blob)
    SELECT release_id, path, envplane_sha256(content) FROM release_files;

DROP TABLE release_files;
ALTER TABLE release_files_blobs RENAME TO release_files;
