package location_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/location"
)

func checker(t *testing.T, allowed string, hints string, env map[string]string) *location.Checker {
	t.Helper()
	h, err := location.ParseHints(hints)
	if err != nil {
		t.Fatal(err)
	}
	c, err := location.NewChecker(strings.Split(allowed, ","), h, &location.Options{Getenv: func(k string) string { return env[k] }, HintFlag: "--location-hint"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Each URL with the location it is in, or the words its error must
// contain ("!" prefix) when allowed is every location used here.
func TestDerive(t *testing.T) {
	all := "local,eu-central-1,us-east-1,europe-west3,global,germanywestcentral"
	aws := map[string]string{"AWS_REGION": "eu-central-1"}
	awsDefault := map[string]string{"AWS_DEFAULT_REGION": "us-east-1"}
	for _, c := range []struct {
		kind  location.Kind
		url   string
		hints string
		env   map[string]string
		want  string
	}{
		// Blobs.
		{location.Blob, "", "", nil, "local"},
		{location.Blob, "file:///var/lib/berth/blobs", "", nil, "local"},
		{location.Blob, "mem://", "", nil, "local"},
		{location.Blob, "s3://bucket?region=eu-central-1", "", nil, "eu-central-1"},
		{location.Blob, "s3://bucket?region=EU-CENTRAL-1", "", nil, "eu-central-1"},
		{location.Blob, "s3://bucket", "", aws, "eu-central-1"},
		{location.Blob, "s3://bucket", "", awsDefault, "us-east-1"},
		{location.Blob, "s3://bucket", "", nil, "!no region parameter"},
		{location.Blob, "s3://bucket", "blob=eu-central-1", nil, "eu-central-1"},
		{location.Blob, "s3://bucket?region=us-east-1", "blob=eu-central-1", nil, "!but the --location-hint says blob=eu-central-1"},
		{location.Blob, "s3://bucket?endpoint=http://127.0.0.1:7070&region=us-east-1", "", nil, "local"},
		{location.Blob, "s3://bucket?endpoint=https://minio.example&region=us-east-1", "", nil, "!S3-compatible endpoint"},
		{location.Blob, "s3://bucket?endpoint=https://minio.example&region=us-east-1", "blob=eu-central-1", nil, "eu-central-1"},
		{location.Blob, "gs://bucket", "", nil, "!must be read from the service"},
		{location.Blob, "gs://bucket", "blob=europe-west3", nil, "!must be read from the service"},
		{location.Blob, "azblob://container", "", nil, "!Azure storage account"},
		{location.Blob, "azblob://container", "blob=germanywestcentral", nil, "germanywestcentral"},
		{location.Blob, "weird://x", "", nil, "!cannot be determined"},
		{location.Blob, "not a url", "", nil, "!not a URL"},
		// Keepers.
		{location.Keeper, "", "", nil, "local"},
		{location.Keeper, "base64key://c2VjcmV0", "", nil, "local"},
		{location.Keeper, "awskms://arn:aws:kms:eu-central-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", "", nil, "eu-central-1"},
		{location.Keeper, "awskms:///arn:aws:kms:us-east-1:111122223333:key/k?region=us-east-1", "", nil, "us-east-1"},
		{location.Keeper, "awskms://arn:aws:kms:us-east-1:111122223333:key/k?region=eu-central-1", "", nil, "!disagree"},
		{location.Keeper, "awskms://alias/berth?region=eu-central-1", "", nil, "eu-central-1"},
		{location.Keeper, "awskms://1234abcd-12ab", "", aws, "eu-central-1"},
		{location.Keeper, "awskms://1234abcd-12ab", "", nil, "!not an ARN"},
		{location.Keeper, "awskms://1234abcd-12ab", "keeper=us-east-1", nil, "us-east-1"},
		{location.Keeper, "gcpkms://projects/p/locations/europe-west3/keyRings/r/cryptoKeys/k", "", nil, "europe-west3"},
		{location.Keeper, "gcpkms://projects/p/locations/global/keyRings/r/cryptoKeys/k", "", nil, "global"},
		{location.Keeper, "gcpkms://projects/p/keyRings/r", "", nil, "!no locations/<location>"},
		{location.Keeper, "azurekeyvault://v.vault.azure.net/keys/k", "", nil, "!Azure key vault"},
		{location.Keeper, "azurekeyvault://v.vault.azure.net/keys/k", "keeper=germanywestcentral", nil, "germanywestcentral"},
		{location.Keeper, "hashivault://k", "", nil, "!cannot be determined"},
		// Metadata.
		{location.Metadata, "", "", nil, "local"},
		{location.Metadata, "sqlite:///var/lib/berth/meta.db", "", nil, "local"},
		{location.Metadata, "postgres://u:p@127.0.0.1:5432/berth", "", nil, "local"},
		{location.Metadata, "postgres://u:p@localhost/berth", "", nil, "local"},
		{location.Metadata, "postgres:///berth?host=/run/postgresql", "", nil, "local"},
		{location.Metadata, "postgres:///berth", "", nil, "local"},
		{location.Metadata, "postgres://u:p@db.abc123.eu-central-1.rds.amazonaws.com/berth", "", nil, "eu-central-1"},
		{location.Metadata, "postgres://u:p@db.example.com/berth", "", nil, "!db.example.com does not say where it is"},
		{location.Metadata, "postgres://u:p@db.example.com/berth", "meta=eu-central-1", nil, "eu-central-1"},
		{location.Metadata, "postgres://u:p@db.abc.eu-central-1.rds.amazonaws.com,db.abc.us-east-1.rds.amazonaws.com/berth", "", nil, "!different locations"},
		{location.Metadata, "mysql://x", "", nil, "!cannot be determined"},
		// Events.
		{location.Events, "", "", nil, ""},
		{location.Events, "mem://topic", "", nil, "local"},
		{location.Events, "nats://127.0.0.1:4222/berth", "", nil, "local"},
		{location.Events, "nats://nats.example:4222/berth", "", nil, "!NATS server"},
		{location.Events, "nats://nats.example:4222/berth", "events=eu-central-1", nil, "eu-central-1"},
		{location.Events, "awssns:///arn:aws:sns:eu-central-1:123456789012:berth", "", nil, "eu-central-1"},
		{location.Events, "awssqs://sqs.us-east-1.amazonaws.com/123456789012/berth", "", nil, "us-east-1"},
		{location.Events, "kafka://berth", "", nil, "!cannot be determined"},
	} {
		got, err := checker(t, all, c.hints, c.env).Check(c.kind, "--x-url", c.url)
		if want, ok := strings.CutPrefix(c.want, "!"); ok {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s %q: %q, %v; want an error containing %q", c.kind, c.url, got, err, want)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s %q: %q, %v; want %q", c.kind, c.url, got, err, c.want)
		}
	}
}

func TestNotAllowed(t *testing.T) {
	c := checker(t, "eu-central-1,local", "", nil)
	_, err := c.Check(location.Blob, "--blob-url", "s3://bucket?region=us-east-1")
	if err == nil || err.Error() != "location: --blob-url s3://bucket is in us-east-1, which is not an allowed location (allowed: eu-central-1, local)" {
		t.Fatalf("err %v", err)
	}
	// Credentials never appear.
	_, err = c.Check(location.Metadata, "--meta-url", "postgres://berth:hunter2@db.abc.us-east-1.rds.amazonaws.com/berth?password=hunter2")
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "--meta-url") {
		t.Fatalf("err %v", err)
	}
	_, err = c.Check(location.Keeper, "--keeper-url", "gcpkms://projects/p/locations/global/keyRings/r/cryptoKeys/k")
	if err == nil || !strings.Contains(err.Error(), "global") {
		t.Fatalf("err %v", err)
	}
	if err := c.CheckSelf("--location", "us-east-1"); err == nil || !strings.Contains(err.Error(), "--location is us-east-1") {
		t.Fatalf("CheckSelf: %v", err)
	}
	if err := c.CheckSelf("--location", ""); err == nil || !strings.Contains(err.Error(), "required") {
		t.Fatalf("CheckSelf empty: %v", err)
	}
	if err := c.CheckSelf("--location", "EU-Central-1"); err != nil {
		t.Fatalf("CheckSelf: %v", err)
	}
}

func TestReported(t *testing.T) {
	c := checker(t, "europe-west3,eu", "", nil)
	_, err := c.Check(location.Blob, "--blob-url", "gs://bucket?anonymous=true")
	var ask *location.AskError
	if !errors.As(err, &ask) || ask.Kind != location.Blob || ask.URL != "gs://bucket" {
		t.Fatalf("Check(gs://) = %v, want an AskError", err)
	}
	for reported, want := range map[string]string{"EUROPE-WEST3": "europe-west3", "EU": "eu", "US-CENTRAL1": "!us-central1 (as its service reports), which is not an allowed", "": "!no usable location"} {
		got, err := c.CheckReported(location.Blob, "--blob-url", "gs://bucket", reported)
		if w, bad := strings.CutPrefix(want, "!"); bad {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("CheckReported(%q) = %q, %v; want %q", reported, got, err, w)
			}
		} else if err != nil || got != want {
			t.Errorf("CheckReported(%q) = %q, %v; want %q", reported, got, err, want)
		}
	}
	hinted := checker(t, "europe-west3,eu", "blob=eu", nil)
	if _, err := hinted.CheckReported(location.Blob, "--blob-url", "gs://bucket", "EUROPE-WEST3"); err == nil || !strings.Contains(err.Error(), "says blob=eu") {
		t.Fatalf("hint contradicting the report: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := location.NewChecker(nil, nil, nil); err == nil {
		t.Error("no allowed locations accepted")
	}
	if _, err := location.NewChecker([]string{"eu central"}, nil, nil); err == nil {
		t.Error("bad location name accepted")
	}
	if _, err := location.NewChecker([]string{"local"}, map[location.Kind]string{"bucket": "local"}, nil); err == nil {
		t.Error("unknown hint kind accepted")
	}
	if _, err := location.NewChecker([]string{"local"}, map[location.Kind]string{"blob": "x y"}, nil); err == nil {
		t.Error("bad hint accepted")
	}
	for _, h := range []string{"blob", "blob=a,blob=b"} {
		if _, err := location.ParseHints(h); err == nil {
			t.Errorf("ParseHints(%q) succeeded", h)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@h/db?sslmode=require&password=x": "postgres://h/db",
		"awskms://arn:aws:kms:eu-central-1:1:key/k?region=x":  "awskms://arn:aws:kms:eu-central-1:1:key/k",
		"":    "(default)",
		"x y": "(not a URL)",
	} {
		if got := location.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
