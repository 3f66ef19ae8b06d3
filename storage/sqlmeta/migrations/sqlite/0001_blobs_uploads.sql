-- Blob index and upload sessions. Times are Unix nanoseconds (UTC); JSON
-- columns hold the driver package's record types.
CREATE TABLE blobs (
    digest     TEXT    NOT NULL PRIMARY KEY,
    size       INTEGER NOT NULL,
    parts      TEXT    NOT NULL,
    encryption TEXT,
    created_at INTEGER NOT NULL
);

CREATE TABLE uploads (
    id         TEXT    NOT NULL PRIMARY KEY,
    version    INTEGER NOT NULL,
    received   INTEGER NOT NULL,
    parts      TEXT    NOT NULL,
    hashes     TEXT    NOT NULL,
    encryption TEXT,
    labels     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE INDEX uploads_by_updated ON uploads (updated_at, id);
