package memmeta

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/berth-dev/berth/storage/driver"
)

// maxRateKeys bounds the buckets kept; when it is reached, the buckets
// that are full again (no different from absent ones) are dropped.
const maxRateKeys = 100_000

// TakeRate implements driver.RateLimits for the goroutines of one process.
func (m *Metadata) TakeRate(ctx context.Context, key string, rate float64, burst, cost int) (bool, time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return false, 0, err
	}
	if !(rate > 0) || math.IsInf(rate, 0) || burst < 1 || cost < 1 || len(key) > 1024 {
		return false, 0, fmt.Errorf("memmeta: take rate: rate %g, burst %d, cost %d, key of %d bytes: %w",
			rate, burst, cost, len(key), driver.ErrInvalidArgument)
	}
	interval := 1e9 / rate
	window := int64(math.Min(math.Ceil(float64(burst)*interval), math.MaxInt64/4))
	if cost > burst {
		return false, time.Duration(window), nil
	}
	inc := int64(math.Min(math.Ceil(float64(cost)*interval), float64(window)))
	now := time.Now().UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rates == nil {
		m.rates = map[string]int64{}
	}
	tat := max(m.rates[key], now)
	if tat+inc-window > now {
		return false, time.Duration(max(tat+inc-window-now, 1)), nil
	}
	if _, ok := m.rates[key]; !ok && len(m.rates) >= maxRateKeys {
		for k, t := range m.rates {
			if t < now {
				delete(m.rates, k)
			}
		}
	}
	m.rates[key] = tat + inc
	return true, 0, nil
}

var _ driver.RateLimits = (*Metadata)(nil)
