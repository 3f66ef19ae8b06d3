package ccc_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// mustRefuse starts registryd with args and asserts that it refuses to
// start, with an error mentioning every word of want; it returns the
// error's last line.
func mustRefuse(t *testing.T, a *assessment, what string, args []string, want ...string) string {
	t.Helper()
	return mustRefuseEnv(t, a, what, args, nil, want...)
}

// mustRefuseEnv is mustRefuse with environment variables.
func mustRefuseEnv(t *testing.T, a *assessment, what string, args, env []string, want ...string) string {
	t.Helper()
	s, err := startServer(t, serverOptions{Args: args, Env: env})
	if err == nil {
		a.Errorf("%s: registryd started and serves %s", what, s.URL)
		s.stop()
		return ""
	}
	var se *startError
	if !errors.As(err, &se) {
		a.Fatalf("%s: %v", what, err)
	}
	lines := strings.Split(strings.TrimSpace(se.Output), "\n")
	last := lines[len(lines)-1]
	for _, w := range want {
		if !strings.Contains(strings.ToLower(se.Output), strings.ToLower(w)) {
			a.Errorf("%s: registryd refused to start, but its error does not mention %q: %s", what, w, last)
		}
	}
	if strings.Contains(se.Output, "registryd starting") {
		a.Errorf("%s: registryd logged that it was starting before it refused", what)
	}
	return last
}

func TestCCC_Core_CN06_AR01_C06_TR01_ServiceLocation(t *testing.T) {
	a := assess(t)
	t.Parallel()
	if !hasFlag(t, "allowed-locations") {
		a.Gap("registryd has no notion of location: nothing declares where it runs nor restricts it to trusted locations")
		return
	}
	s := mustStart(t, serverOptions{Args: []string{"--allowed-locations", "eu-central-1,local", "--location", "eu-central-1"}})
	if r := s.do(t, anonymous, http.MethodGet, "/v2/", nil); r.Status != http.StatusUnauthorized {
		a.Errorf("inside its allowed locations, GET /v2/ → %d, want 401", r.Status)
	}
	logLine := ""
	for _, l := range strings.Split(s.Log(), "\n") {
		if strings.Contains(l, "locations checked") {
			logLine = strings.TrimSpace(l[strings.Index(l, "msg="):])
		}
	}
	a.Evidence("--location eu-central-1 with --allowed-locations eu-central-1,local: starts and serves; start-up log: %s", logLine)
	msg := mustRefuse(t, a, "--location us-east-1", []string{"--allowed-locations", "eu-central-1,local", "--location", "us-east-1"}, "us-east-1")
	a.Evidence("--location us-east-1 with the same allowlist: refuses to start and serves nothing: %s", msg)
	msg = mustRefuse(t, a, "no --location", []string{"--allowed-locations", "eu-central-1,local"}, "--location")
	a.Evidence("--allowed-locations without --location: refuses to start: %s", msg)
	a.Review("the server's own location is declared by the operator (--location); Berth enforces it against the allowlist but cannot verify where the process really runs")
}

func TestCCC_Core_CN06_AR02_C06_TR02_ChildResourceLocation(t *testing.T) {
	a := assess(t)
	t.Parallel()
	if !hasFlag(t, "allowed-locations") {
		a.Gap("registryd does not check where its blob store, metadata database, key and event broker are")
		return
	}
	base := []string{"--allowed-locations", "eu-central-1,local", "--location", "eu-central-1"}
	mustStart(t, serverOptions{Args: base})
	a.Evidence("local child resources (file bucket, SQLite, key file) with --allowed-locations eu-central-1,local: starts")
	for _, c := range []struct {
		what string
		args []string
		want string
	}{
		{"an S3 bucket in eu-west-1", []string{"--blob-url", "s3://berth-ccc?region=eu-west-1"}, "eu-west-1"},
		{"a KMS key in us-east-1", []string{"--keeper-url", "awskms:///arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}, "us-east-1"},
		{"an RDS PostgreSQL database in eu-west-1", []string{"--meta-url", "postgres://berth@berth.abcdefghijkl.eu-west-1.rds.amazonaws.com:5432/berth"}, "eu-west-1"},
		{"an SNS topic in us-west-2", []string{"--events-url", "awssns:///arn:aws:sns:us-west-2:111122223333:berth"}, "us-west-2"},
		{"a PostgreSQL database whose location the URL does not say", []string{"--meta-url", "postgres://berth@db.example.com:5432/berth"}, "--meta-url"},
	} {
		msg := mustRefuse(t, a, c.what, append(append([]string{}, base...), c.args...), c.want)
		a.Evidence("%s: refuses to start: %s", c.what, msg)
	}
	a.Evidence("locations come from the resources' URLs (S3 region, KMS key ARN, RDS host name, SNS ARN) and loopback/file resources are local; a resource whose location its URL does not say is refused unless the operator states it with --location-hint")
}
