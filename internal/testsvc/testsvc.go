// Package testsvc connects Berth's tests to the local stand-ins for cloud
// services that .ci/services starts: an S3 server (versitygw), PostgreSQL,
// and NATS, plus Azurite and fake-gcs-server when they are available.
//
// Start the services and export their URLs into the shell with
//
//	eval "$(.ci/services start)"
//
// then run the tests as usual. Stop them with .ci/services stop.
//
// # Environment
//
// Each service is named by one environment variable:
//
//   - BERTH_TEST_S3_URL: a gocloud.dev s3blob bucket URL, such as
//     "s3://berth-test?endpoint=http://127.0.0.1:7070&region=us-east-1&use_path_style=true".
//     Credentials are never in the URL; the AWS SDK reads AWS_ACCESS_KEY_ID
//     and AWS_SECRET_ACCESS_KEY.
//   - BERTH_TEST_POSTGRES_URL: a PostgreSQL connection URL, such as
//     "postgres://berth:berth@127.0.0.1:5432/berth_test?sslmode=disable".
//     Its role may create databases.
//   - BERTH_TEST_NATS_URL: a NATS server URL, such as "nats://127.0.0.1:4222".
//   - BERTH_TEST_AZURE_URL: a gocloud.dev azureblob bucket URL for Azurite,
//     such as "azblob://berth-test?protocol=http&domain=127.0.0.1:10000";
//     the driver reads AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY.
//   - BERTH_TEST_GCS_URL: a gocloud.dev gcsblob bucket URL for
//     fake-gcs-server, such as "gs://berth-test?anonymous=true"; the driver
//     reads STORAGE_EMULATOR_HOST.
//
// This package registers only the s3blob driver. A test that opens the
// Azure or GCS bucket with [Bucket] imports gocloud.dev/blob/azureblob or
// gocloud.dev/blob/gcsblob itself, so that packages that do not need those
// SDKs do not build them.
//
// # Skipping
//
// A test that needs a service whose variable is unset is skipped with a
// message that names the service and how to start it. When the CI
// environment variable is true, a missing service fails the test instead,
// so that CI never passes by skipping silently.
//
// # Isolation
//
// Tests in many packages run at once against the same servers. [S3Bucket]
// and [Bucket] hand each test its own key prefix, and [Postgres] its own
// database; each is removed when the test ends. [Name] gives a unique name
// for anything else, such as a NATS subject.
//
// # Concurrency
//
// Every function may be called from parallel tests and from many test
// processes at once.
//
// # Security
//
// The services hold throwaway data, listen on loopback only and use fixed
// test credentials. Messages from this package never print a URL's password.
package testsvc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/s3blob" // registers the "s3" scheme
	"gocloud.dev/gcerrors"
)

// Names of the environment variables that locate each service.
const (
	EnvS3       = "BERTH_TEST_S3_URL"
	EnvPostgres = "BERTH_TEST_POSTGRES_URL"
	EnvNATS     = "BERTH_TEST_NATS_URL"
	EnvAzure    = "BERTH_TEST_AZURE_URL"
	EnvGCS      = "BERTH_TEST_GCS_URL"
)

// StartCommand is the shell command that starts the services and exports
// their environment variables.
const StartCommand = `eval "$(.ci/services start)"`

// setupTimeout bounds each call this package makes to a service while
// setting up or cleaning up after a test.
const setupTimeout = 30 * time.Second

// services names the service behind each known variable, for messages.
var services = map[string]string{
	EnvS3:       "S3 (versitygw)",
	EnvPostgres: "PostgreSQL",
	EnvNATS:     "NATS",
	EnvAzure:    "Azure Blob Storage (Azurite)",
	EnvGCS:      "Google Cloud Storage (fake-gcs-server)",
}

// serviceName names the service behind the environment variable env.
func serviceName(env string) string {
	if name, ok := services[env]; ok {
		return name
	}
	return "the service"
}

// InCI reports whether the CI environment variable is set to a true value
// ("true", "1", …), in which case a missing service is a failure rather than
// a reason to skip.
func InCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// URL returns the value of the environment variable env, which locates a
// service. When env is unset or empty, URL skips the test with a message
// naming the service and how to start it, or, when [InCI] is true, fails it
// with the same message. In both cases it does not return.
func URL(t testing.TB, env string) string {
	t.Helper()
	if v := os.Getenv(env); v != "" {
		return v
	}
	msg := fmt.Sprintf("testsvc: %s is not set, so %s is not available; start the local services with: %s", env, serviceName(env), StartCommand)
	if InCI() {
		t.Fatalf("%s (a missing service is a failure because CI=true)", msg)
	} else {
		t.Skipf("%s (set CI=true to make this a failure)", msg)
	}
	return ""
}

// Name returns a name unique to this test and this run, made of lower-case
// letters, digits and underscores, at most 40 bytes long and starting with
// "berth_". Use it for anything tests share a namespace for, such as NATS
// subjects or queue names.
func Name(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("berth_")
	for _, r := range strings.ToLower(t.Name()) {
		if b.Len() >= 6+20 {
			break
		}
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatalf("testsvc: random name: %v", err)
	}
	b.WriteByte('_')
	b.WriteString(hex.EncodeToString(rnd[:]))
	return b.String()
}

// S3Bucket returns [Bucket](t, [EnvS3]): the S3 bucket at BERTH_TEST_S3_URL,
// limited to a key prefix unique to this test.
func S3Bucket(t testing.TB) *blob.Bucket {
	t.Helper()
	b, _ := prefixedBucket(t, EnvS3)
	return b
}

// Bucket opens the gocloud.dev bucket whose URL is in the environment
// variable env (see [URL] for what happens when it is unset), checks that it
// is reachable, and returns a view of it limited to a key prefix unique to
// this test. When the test ends, every object under that prefix is deleted
// and the bucket is closed; the test must not close it. The driver for the
// URL's scheme must be registered, by importing it, before Bucket is called.
func Bucket(t testing.TB, env string) *blob.Bucket {
	t.Helper()
	b, _ := prefixedBucket(t, env)
	return b
}

// Postgres returns the URL of a new, empty PostgreSQL database, created for
// this test on the server at BERTH_TEST_POSTGRES_URL (see [URL] for what
// happens when it is unset) and dropped, with any connections still open to
// it, when the test ends.
func Postgres(t testing.TB) string {
	t.Helper()
	base := URL(t, EnvPostgres)
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("testsvc: %s must be a postgres:// URL", EnvPostgres)
	}
	name := Name(t)

	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if err := pgExec(ctx, base, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testsvc: create database %s on %s: %v", name, u.Redacted(), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		// FORCE cannot terminate backends of other roles, such as an
		// autovacuum worker that happens to be on the database: those
		// finish or yield quickly, so the drop is retried.
		var err error
		for range 20 {
			if err = pgExec(ctx, base, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); !insufficientPrivilege(err) {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("testsvc: drop database %s on %s: %v", name, u.Redacted(), err)
		}
	})

	u.Path = "/" + name
	return u.String()
}

// insufficientPrivilege reports whether err is PostgreSQL's
// insufficient_privilege (42501).
func insufficientPrivilege(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42501"
}

// pgExec runs one statement on a new connection to the database at dsn.
func pgExec(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, sql)
	return errors.Join(err, conn.Close(ctx))
}

// NATS returns the URL of the NATS server at BERTH_TEST_NATS_URL (see [URL]
// for what happens when it is unset). The server is shared: give each test
// its own subjects, for instance with [Name].
func NATS(t testing.TB) string {
	t.Helper()
	return URL(t, EnvNATS)
}

// prefixedBucket opens the bucket whose URL is in env, checks that it is
// reachable, and returns it limited to a prefix unique to t, with a cleanup
// that empties the prefix and closes the bucket.
func prefixedBucket(t testing.TB, env string) (*blob.Bucket, string) {
	t.Helper()
	raw := URL(t, env)
	shown := raw
	if u, err := url.Parse(raw); err == nil {
		shown = u.Redacted()
	}
	prefix := Name(t) + "/"

	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	b, err := blob.OpenBucket(ctx, raw)
	if err != nil {
		t.Fatalf("testsvc: open %s bucket %s (is its driver imported?): %v", serviceName(env), shown, err)
	}
	if ok, err := b.IsAccessible(ctx); err != nil || !ok {
		_ = b.Close()
		t.Fatalf("testsvc: %s bucket %s is not accessible (accessible=%v, err=%v); is the service running? %s", serviceName(env), shown, ok, err, StartCommand)
	}
	pb := blob.PrefixedBucket(b, prefix)

	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		// Empty the prefix through a bucket of our own, so that cleanup
		// works even if the test closed its bucket after all.
		if err := emptyPrefix(ctx, raw, prefix); err != nil {
			t.Errorf("testsvc: delete objects under %q in %s: %v", prefix, shown, err)
		}
		if err := pb.Close(); err != nil && gcerrors.Code(err) != gcerrors.FailedPrecondition {
			t.Errorf("testsvc: close bucket %s: %v", shown, err)
		}
	})
	return pb, prefix
}

// emptyPrefix deletes every object under prefix in the bucket at rawURL.
func emptyPrefix(ctx context.Context, rawURL, prefix string) error {
	b, err := blob.OpenBucket(ctx, rawURL)
	if err != nil {
		return err
	}
	var errs []error
	it := b.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				errs = append(errs, err)
			}
			break
		}
		if err := b.Delete(ctx, obj.Key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			errs = append(errs, err)
		}
	}
	errs = append(errs, b.Close())
	return errors.Join(errs...)
}
