package testsvc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/gcsblob"
)

// fakeTB records what URL asks of a test instead of skipping or failing it.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Skipf(format string, args ...any) { f.skipped = fmt.Sprintf(format, args...) }

func (f *fakeTB) Fatalf(format string, args ...any) { f.failed = fmt.Sprintf(format, args...) }

func TestURL(t *testing.T) {
	const env = "BERTH_TEST_TESTSVC_PROBE_URL"
	for _, tc := range []struct {
		ci, value       string
		want            string
		skip, fail      bool
		wantInMessage   []string
		unwantInMessage []string
	}{
		{ci: "", value: "nats://127.0.0.1:1", want: "nats://127.0.0.1:1"},
		{ci: "true", value: "nats://127.0.0.1:1", want: "nats://127.0.0.1:1"},
		{ci: "", value: "", skip: true, wantInMessage: []string{env, StartCommand, "CI=true"}},
		{ci: "false", value: "", skip: true, wantInMessage: []string{env, StartCommand}},
		{ci: "true", value: "", fail: true, wantInMessage: []string{env, StartCommand, "CI=true"}},
		{ci: "1", value: "", fail: true, wantInMessage: []string{env, StartCommand}},
	} {
		t.Run(fmt.Sprintf("CI=%q,set=%v", tc.ci, tc.value != ""), func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			t.Setenv(env, tc.value)
			f := &fakeTB{TB: t}
			if got := URL(f, env); got != tc.want {
				t.Errorf("URL = %q, want %q", got, tc.want)
			}
			if got := f.skipped != ""; got != tc.skip {
				t.Errorf("skipped = %v (%q), want %v", got, f.skipped, tc.skip)
			}
			if got := f.failed != ""; got != tc.fail {
				t.Errorf("failed = %v (%q), want %v", got, f.failed, tc.fail)
			}
			for _, s := range tc.wantInMessage {
				if msg := f.skipped + f.failed; !strings.Contains(msg, s) {
					t.Errorf("message %q does not mention %q", msg, s)
				}
			}
		})
	}
}

func TestURLNamesService(t *testing.T) {
	t.Setenv("CI", "")
	for env, service := range services {
		t.Setenv(env, "")
		f := &fakeTB{TB: t}
		URL(f, env)
		if !strings.Contains(f.skipped, service) {
			t.Errorf("URL(%s) skipped with %q, which does not name %q", env, f.skipped, service)
		}
	}
}

func TestName(t *testing.T) {
	valid := regexp.MustCompile(`^berth_[a-z0-9_]+_[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 100 {
		n := Name(t)
		if !valid.MatchString(n) || len(n) > 40 {
			t.Fatalf("Name = %q: want at most 40 bytes matching %v", n, valid)
		}
		if seen[n] {
			t.Fatalf("Name returned %q twice", n)
		}
		seen[n] = true
	}
	t.Run("Long/Sub test/with ümlauts and spaces and a very long name indeed", func(t *testing.T) {
		if n := Name(t); !valid.MatchString(n) || len(n) > 40 {
			t.Errorf("Name = %q: want at most 40 bytes matching %v", n, valid)
		}
	})
}

func TestS3Bucket(t *testing.T) {
	testBucket(t, EnvS3, S3Bucket)
}

func TestAzureBucket(t *testing.T) {
	testBucket(t, EnvAzure, func(t testing.TB) *blob.Bucket { return Bucket(t, EnvAzure) })
}

func TestGCSBucket(t *testing.T) {
	testBucket(t, EnvGCS, func(t testing.TB) *blob.Bucket { return Bucket(t, EnvGCS) })
}

// testBucket round-trips an object through the bucket that open returns and
// through two more buckets like it, checks that each has its own prefix, and
// checks that cleanup empties each prefix.
func testBucket(t *testing.T, env string, open func(testing.TB) *blob.Bucket) {
	base := URL(t, env)
	t.Run("Wrapper", func(t *testing.T) {
		roundTrip(t, open(t))
	})
	var prefixes []string
	for i := range 2 {
		t.Run(fmt.Sprint("Prefix", i), func(t *testing.T) {
			b, prefix := prefixedBucket(t, env)
			prefixes = append(prefixes, prefix)
			roundTrip(t, b)
		})
	}
	if len(prefixes) != 2 || prefixes[0] == prefixes[1] {
		t.Fatalf("prefixes %q: want two different ones", prefixes)
	}

	// The subtests have ended, so their cleanups have emptied their prefixes.
	ctx := context.Background()
	b, err := blob.OpenBucket(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, p := range prefixes {
		obj, err := b.List(&blob.ListOptions{Prefix: p}).Next(ctx)
		if !errors.Is(err, io.EOF) {
			t.Errorf("after cleanup, prefix %q still lists %+v (err %v)", p, obj, err)
		}
	}
}

// roundTrip writes, reads and lists an object in b, which must be empty.
func roundTrip(t *testing.T, b *blob.Bucket) {
	t.Helper()
	ctx := context.Background()
	want := []byte("berth test object\n")
	if err := b.WriteAll(ctx, "dir/object", want, nil); err != nil {
		t.Fatalf("WriteAll: %v", err)
	}
	got, err := b.ReadAll(ctx, "dir/object")
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if string(got) != string(want) {
		t.Fatalf("ReadAll = %q, want %q", got, want)
	}
	it := b.List(nil)
	obj, err := it.Next(ctx)
	if err != nil || obj.Key != "dir/object" {
		t.Fatalf("List: first object %+v, %v; want key dir/object relative to the prefix", obj, err)
	}
	if obj, err := it.Next(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("List: second object %+v, %v; want only one object under the prefix", obj, err)
	}
}

func TestPostgres(t *testing.T) {
	base := URL(t, EnvPostgres)
	ctx := context.Background()
	var name string
	t.Run("FreshDatabase", func(t *testing.T) {
		dsn := Postgres(t)
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		name = strings.TrimPrefix(u.Path, "/")

		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		// Left open on purpose: cleanup must drop the database anyway.
		var one int
		var db string
		if err := conn.QueryRow(ctx, "SELECT 1, current_database()").Scan(&one, &db); err != nil {
			t.Fatalf("SELECT 1: %v", err)
		}
		if one != 1 || db != name {
			t.Fatalf("SELECT 1, current_database() = %d, %q; want 1, %q", one, db, name)
		}
		var tables int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables); err != nil {
			t.Fatal(err)
		}
		if tables != 0 {
			t.Errorf("fresh database has %d tables", tables)
		}
	})
	if name == "" {
		t.FailNow()
	}

	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

func TestNATS(t *testing.T) {
	u, err := url.Parse(NATS(t))
	if err != nil || u.Scheme != "nats" {
		t.Fatalf("%s = %q: want a nats:// URL", EnvNATS, u)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatalf("dial NATS: %v", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}

	r := bufio.NewReader(conn)
	info, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(info, "INFO {") {
		t.Fatalf("first line from NATS = %q, %v; want INFO {...}", info, err)
	}
	// A full protocol exchange: subscribe, publish, receive, ping.
	subject := Name(t)
	fmt.Fprintf(conn, "CONNECT {\"verbose\":false,\"pedantic\":true}\r\nSUB %s 1\r\nPUB %s 5\r\nhello\r\nPING\r\n", subject, subject)
	for _, want := range []string{"MSG " + subject + " 1 5", "hello", "PONG"} {
		line, err := r.ReadString('\n')
		if err != nil || strings.TrimRight(line, "\r\n") != want {
			t.Fatalf("NATS sent %q, %v; want %q", line, err, want)
		}
	}
}
