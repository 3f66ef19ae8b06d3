-- Durable scan jobs shared by every registry node (driver.ScanJobs): one
-- per manifest digest, claimed with a lease, retried with a backoff.
CREATE TABLE scan_jobs (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    digest          TEXT COLLATE "C" NOT NULL UNIQUE,
    repository      TEXT    NOT NULL,
    if_missing      BIGINT  NOT NULL,
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    leased_until    BIGINT  NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      BIGINT  NOT NULL
);
-- Claims look for due jobs in this order.
CREATE INDEX scan_jobs_due ON scan_jobs (next_attempt_at, id);
