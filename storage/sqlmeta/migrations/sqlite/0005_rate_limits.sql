-- Registry tokens may carry their own request rate limit (0: the server's
-- default), and token buckets shared by the processes using the database
-- live in rate_limits: one row per key with its theoretical arrival time
-- (GCRA).
ALTER TABLE tokens ADD COLUMN rate_per_second REAL NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN rate_burst INTEGER NOT NULL DEFAULT 0;

CREATE TABLE rate_limits (
    key        TEXT    NOT NULL PRIMARY KEY,
    tat        INTEGER NOT NULL,
    ok         INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX rate_limits_tat ON rate_limits (tat);
