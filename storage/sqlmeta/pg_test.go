package sqlmeta_test

import (
	"testing"

	"github.com/berth-dev/berth/internal/testsvc"
)

// postgresURL returns the URL of a fresh PostgreSQL database for t, dropped
// when t ends. Without BERTH_TEST_POSTGRES_URL it skips t with a message,
// except under CI=true, where it fails t.
func postgresURL(t testing.TB) string {
	t.Helper()
	return testsvc.Postgres(t)
}

// requirePostgres skips or fails t, as postgresURL does, without creating
// a database.
func requirePostgres(t testing.TB) {
	t.Helper()
	testsvc.URL(t, testsvc.EnvPostgres)
}
