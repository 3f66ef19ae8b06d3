package sqlmeta

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/storage/driver"
)

// Shared rate limits (driver.RateLimits): one row per key holding its
// theoretical arrival time (GCRA) in nanoseconds since the Unix epoch,
// updated by one atomic upsert per call. On PostgreSQL the time is the
// database server's, so that nodes with skewed clocks share one timeline;
// SQLite is used by the processes of one host, which share a clock.

// Upsert: take cost (inc = cost × emission interval) when the bucket's
// arrival time, moved forward by inc, stays within the burst window of
// now; otherwise keep the row as it was and report ok false. The SET
// expressions all read the row as it was before the update.
const (
	takeRatePostgres = `WITH c AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000000000)::BIGINT AS now)
INSERT INTO rate_limits AS r (key, tat, ok, updated_at) SELECT $1, c.now + $2, TRUE, c.now FROM c
ON CONFLICT (key) DO UPDATE SET
  ok = GREATEST(r.tat, excluded.updated_at) + $2 - $3 <= excluded.updated_at,
  tat = CASE WHEN GREATEST(r.tat, excluded.updated_at) + $2 - $3 <= excluded.updated_at
        THEN GREATEST(r.tat, excluded.updated_at) + $2 ELSE r.tat END,
  updated_at = excluded.updated_at
RETURNING tat, ok, updated_at`
	takeRateSQLite = `INSERT INTO rate_limits (key, tat, ok, updated_at) VALUES (?1, ?2 + ?3, 1, ?2)
ON CONFLICT (key) DO UPDATE SET
  ok = max(tat, excluded.updated_at) + ?3 - ?4 <= excluded.updated_at,
  tat = CASE WHEN max(tat, excluded.updated_at) + ?3 - ?4 <= excluded.updated_at
        THEN max(tat, excluded.updated_at) + ?3 ELSE tat END,
  updated_at = excluded.updated_at
RETURNING tat, ok, updated_at`
)

// pruneEvery is how many TakeRate calls pass between deletions of the
// rows of full buckets, which behave exactly as absent ones.
const pruneEvery = 4096

var takes atomic.Uint64

// TakeRate implements driver.RateLimits.
func (m *Metadata) TakeRate(ctx context.Context, key string, rate float64, burst, cost int) (bool, time.Duration, error) {
	if !(rate > 0) || math.IsInf(rate, 0) || burst < 1 || cost < 1 || len(key) > 1024 {
		return false, 0, fmt.Errorf("sqlmeta: take rate: rate %g, burst %d, cost %d, key of %d bytes: %w",
			rate, burst, cost, len(key), driver.ErrInvalidArgument)
	}
	interval := 1e9 / rate // nanoseconds per unit
	window := int64(math.Min(math.Ceil(float64(burst)*interval), math.MaxInt64/4))
	if cost > burst {
		return false, time.Duration(window), nil
	}
	inc := int64(math.Min(math.Ceil(float64(cost)*interval), float64(window)))
	var (
		tat, now int64
		ok       bool
		err      error
	)
	if m.dialect == dialectPostgres {
		err = m.w.QueryRowContext(ctx, takeRatePostgres, key, inc, window).Scan(&tat, &ok, &now)
	} else {
		err = m.w.QueryRowContext(ctx, takeRateSQLite, key, time.Now().UnixNano(), inc, window).Scan(&tat, &ok, &now)
	}
	if err != nil {
		return false, 0, fail("take rate", err)
	}
	if takes.Add(1)%pruneEvery == 0 {
		m.pruneRates(ctx, now)
	}
	if ok {
		return true, 0, nil
	}
	// Denied: tat is unchanged; cost fits once now reaches tat+inc-window.
	return false, time.Duration(max(tat+inc-window-now, 1)), nil
}

// pruneRates deletes the rows of buckets that are full again at now.
// Failure only leaves them for the next pass.
func (m *Metadata) pruneRates(ctx context.Context, now int64) {
	_, _ = m.w.ExecContext(context.WithoutCancel(ctx), m.q("DELETE FROM rate_limits WHERE tat < ?"), now)
}

var _ driver.RateLimits = (*Metadata)(nil)
