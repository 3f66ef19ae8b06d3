-- Durable scan jobs shared by every registry node (driver.ScanJobs): one
-- per manifest digest, claimed with a lease, retried with a backoff.
CREATE TABLE scan_jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    digest          TEXT    NOT NULL UNIQUE,
    repository      TEXT    NOT NULL,
    if_missing      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    leased_until    INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL
);
-- Claims look for due jobs in this order.
CREATE INDEX scan_jobs_due ON scan_jobs (next_attempt_at, id);
