package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/events"
	"github.com/berth-dev/berth/storage/memmeta"
)

func TestCheckAccessLogURL(t *testing.T) {
	data := t.TempDir()
	c := &config{data: data, blobURL: "s3://blobs?region=eu-central-1"}
	for _, tc := range []struct {
		url  string
		want string // substring of the error; empty: accepted
	}{
		{"file:///var/log/berth", ""},
		{"s3://audit?region=eu-central-1", ""},
		{"nats://127.0.0.1:4222/audit", ""},
		{"file://" + filepath.ToSlash(data) + "/audit", "inside the data directory"},
		{"file://" + filepath.ToSlash(data), "inside the data directory"},
		{"s3://blobs?region=eu-central-1", "same bucket as --blob-url"},
		{"s3://blobs/audit/?region=eu-central-1", "same bucket as --blob-url"},
		{"mem://audit", "in-memory"},
		{"audit", "not a URL"},
	} {
		c.accessLogURL = tc.url
		err := checkAccessLogURL(c)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.url, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one mentioning %q", tc.url, err, tc.want)
		}
	}
}

// A new start continues the chain of the previous start's log and
// announces where records go.
func TestAccessLogSinkContinuesAndAnnounces(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	outside := t.TempDir()
	var buf bytes.Buffer
	al, err := events.NewAccessLog(&events.AccessLogOptions{Output: &buf})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := al.Log(ctx, &events.AccessRecord{Time: time.Now(), Method: "GET", Route: "base", Status: 200}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(data, "access-20260101T000000Z.log"), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	seq, hash := al.Head()
	meta := memmeta.New()
	defer meta.Close()
	c := &config{data: data, blobURL: "file://" + filepath.ToSlash(filepath.Join(data, "blobs")), accessLogURL: "file://" + filepath.ToSlash(outside)}
	s, err := openAccessLogSink(ctx, c, filepath.Join(data, "access-20260101T000100Z.log"), meta, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.FirstSeq != seq+1 || s.PrevHash != hash || s.Writer == nil {
		t.Errorf("sink continues at %d %s (writer %v), want %d %s", s.FirstSeq, s.PrevHash, s.Writer, seq+1, hash)
	}
	evs, err := meta.ClaimEvents(ctx, time.Now(), time.Minute, 10)
	if err != nil || len(evs) != 1 || evs[0].Type != EventAccessLogStarted {
		t.Fatalf("outbox: %v %v", evs, err)
	}
	for _, want := range []string{`"redirected":true`, `"previousLocalLog":"access-20260101T000000Z.log"`, `"firstSeq":4`} {
		if !strings.Contains(string(evs[0].Data), want) {
			t.Errorf("event data %s lacks %s", evs[0].Data, want)
		}
	}
	if err := s.Writer.WriteAccessRecord(ctx, 4, []byte(`{"seq":4}`)); err != nil {
		t.Fatal(err)
	}
	if files, _ := filepath.Glob(filepath.Join(outside, "access", "*", "*.json")); len(files) != 1 {
		t.Errorf("external copy: %v, want one object", files)
	}
}
