-- Repositories, manifests and their references, tags with history, blob
-- links, lifecycle policies, scan results, tokens and the event outbox.
-- Everything under a repository goes with it (ON DELETE CASCADE).
CREATE TABLE repositories (
    name                 TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    visibility           TEXT    NOT NULL,
    immutable_tags       BIGINT NOT NULL,
    immutable_exclusions TEXT    NOT NULL,
    description          TEXT    NOT NULL,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);

CREATE TABLE manifests (
    repository     TEXT COLLATE "C" NOT NULL REFERENCES repositories (name) ON DELETE CASCADE,
    digest         TEXT COLLATE "C" NOT NULL,
    media_type     TEXT    NOT NULL,
    artifact_type  TEXT    NOT NULL,
    size           BIGINT NOT NULL,
    config_digest  TEXT    NOT NULL,
    subject        TEXT COLLATE "C" NOT NULL,
    annotations    TEXT    NOT NULL,
    platforms      TEXT    NOT NULL,
    blobs          TEXT    NOT NULL,
    children       TEXT    NOT NULL,
    pushed_at      BIGINT NOT NULL,
    last_pulled_at BIGINT NOT NULL,
    PRIMARY KEY (repository, digest)
);

-- Referrers: all of a subject's, and those of one artifact type.
CREATE INDEX manifests_by_subject ON manifests (repository, subject, digest);
CREATE INDEX manifests_by_subject_type ON manifests (repository, subject, artifact_type, digest);

CREATE TABLE manifest_blobs (
    repository TEXT COLLATE "C" NOT NULL,
    manifest   TEXT COLLATE "C" NOT NULL,
    position   BIGINT NOT NULL,
    blob       TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (repository, manifest, position),
    FOREIGN KEY (repository, manifest) REFERENCES manifests (repository, digest) ON DELETE CASCADE
);

CREATE INDEX manifest_blobs_by_blob ON manifest_blobs (blob);

CREATE TABLE manifest_children (
    repository TEXT COLLATE "C" NOT NULL,
    parent     TEXT COLLATE "C" NOT NULL,
    position   BIGINT NOT NULL,
    child      TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (repository, parent, position),
    FOREIGN KEY (repository, parent) REFERENCES manifests (repository, digest) ON DELETE CASCADE
);

CREATE INDEX manifest_children_by_child ON manifest_children (repository, child, parent);

CREATE TABLE tags (
    repository TEXT COLLATE "C" NOT NULL,
    name       TEXT COLLATE "C" NOT NULL,
    digest     TEXT COLLATE "C" NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT    NOT NULL,
    PRIMARY KEY (repository, name),
    FOREIGN KEY (repository, digest) REFERENCES manifests (repository, digest) ON DELETE CASCADE
);

CREATE INDEX tags_by_digest ON tags (repository, digest, name);

CREATE TABLE tag_history (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    repository TEXT COLLATE "C" NOT NULL REFERENCES repositories (name) ON DELETE CASCADE,
    tag        TEXT COLLATE "C" NOT NULL,
    old_digest TEXT    NOT NULL,
    new_digest TEXT    NOT NULL,
    changed_at BIGINT NOT NULL,
    changed_by TEXT    NOT NULL
);

CREATE INDEX tag_history_by_tag ON tag_history (repository, tag, seq);

CREATE TABLE blob_links (
    repository TEXT COLLATE "C" NOT NULL REFERENCES repositories (name) ON DELETE CASCADE,
    digest     TEXT COLLATE "C" NOT NULL REFERENCES blobs (digest) ON DELETE CASCADE,
    linked_at  BIGINT NOT NULL,
    PRIMARY KEY (repository, digest)
);

CREATE INDEX blob_links_by_digest ON blob_links (digest);

CREATE TABLE policies (
    repository TEXT COLLATE "C" NOT NULL PRIMARY KEY REFERENCES repositories (name) ON DELETE CASCADE,
    document   TEXT    NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT    NOT NULL
);

CREATE TABLE scan_results (
    digest     TEXT COLLATE "C" NOT NULL,
    scanner    TEXT COLLATE "C" NOT NULL,
    kind       TEXT COLLATE "C" NOT NULL,
    data       TEXT    NOT NULL,
    scanned_at BIGINT NOT NULL,
    PRIMARY KEY (digest, scanner, kind)
);

CREATE TABLE tokens (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    username    TEXT COLLATE "C" NOT NULL UNIQUE,
    secret_hash BYTEA   NOT NULL,
    scopes      TEXT    NOT NULL,
    created_by  TEXT    NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT NOT NULL
);

-- Claims scan the primary key in id order, skipping claimed events.
CREATE TABLE outbox (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type          TEXT    NOT NULL,
    subject       TEXT    NOT NULL,
    data          BYTEA   NOT NULL,
    created_at    BIGINT NOT NULL,
    claimed_until BIGINT NOT NULL DEFAULT 0
);
