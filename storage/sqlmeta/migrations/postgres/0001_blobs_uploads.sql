-- Blob index and upload sessions. Times are Unix nanoseconds (UTC); JSON
-- columns hold the driver package's record types.
CREATE TABLE blobs (
    digest     TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    size       BIGINT NOT NULL,
    parts      TEXT   NOT NULL,
    encryption TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE uploads (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    version    BIGINT NOT NULL,
    received   BIGINT NOT NULL,
    parts      TEXT   NOT NULL,
    hashes     TEXT   NOT NULL,
    encryption TEXT,
    labels     TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX uploads_by_updated ON uploads (updated_at, id);
