-- Registry tokens may carry their own request rate limit (0: the server's
-- default), and token buckets shared by the nodes of a cluster live in
-- rate_limits: one row per key with its theoretical arrival time (GCRA).
ALTER TABLE tokens ADD COLUMN rate_per_second DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN rate_burst INTEGER NOT NULL DEFAULT 0;

CREATE TABLE rate_limits (
    key        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    tat        BIGINT  NOT NULL,
    ok         BOOLEAN NOT NULL,
    updated_at BIGINT  NOT NULL
);
CREATE INDEX rate_limits_tat ON rate_limits (tat);
