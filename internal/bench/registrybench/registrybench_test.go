package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"
)

// TestQuickRun runs the smoke configuration against both peers, and against
// registryd when examples/registryd exists, and checks only that every
// figure was produced and is positive: no timing is asserted.
func TestQuickRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs registry servers")
	}
	cfg := quickConfig(defaultConfig())
	cfg.manifestDur = 300 * time.Millisecond
	cfg.workDir = t.TempDir()
	cfg.log = testWriter{t}
	want := []string{nameDistribution, nameGGCR}
	if _, ok, err := registrydDir(context.Background()); err != nil {
		t.Fatal(err)
	} else if ok {
		want = append(want, nameRegistryd)
	} else {
		t.Log("examples/registryd does not exist: measuring the peers only")
	}
	cfg.registries = want

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	rep, err := run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	rep.writeText(&text)
	t.Log("\n" + text.String())

	perRegistry := 1 + 1 + len(cfg.sizes)*4 // manifest-get, rss after it, 3 transfers + rss per size
	count := map[string]int{}
	for _, r := range rep.Results {
		count[r.Registry]++
		if !(r.Value > 0) {
			t.Errorf("%s %s: value %v, want > 0", r.Registry, r.label(), r.Value)
		}
		if r.Measurement == mManifestGet && (r.Requests == 0 || !(r.P50ms > 0) || r.P99ms < r.P50ms) {
			t.Errorf("%s manifest-get: %d requests, p50 %v ms, p99 %v ms", r.Registry, r.Requests, r.P50ms, r.P99ms)
		}
	}
	for _, name := range want {
		if count[name] != perRegistry {
			t.Errorf("%s: %d results, want %d", name, count[name], perRegistry)
		}
	}
	if len(want) == 3 {
		if len(rep.Ratios) != perRegistry {
			t.Errorf("%d ratios, want %d", len(rep.Ratios), perRegistry)
		}
		for _, r := range rep.Ratios {
			if !(r.Distribution > 0) || !(r.GGCR > 0) || r.Pass == nil {
				t.Errorf("ratio %s: %+v", r.Label, r)
			}
		}
	}
	var js bytes.Buffer
	if err := rep.writeJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Results) != len(rep.Results) {
		t.Fatalf("JSON round trip: %v, %d results", err, len(back.Results))
	}
	children.Lock()
	left := len(children.procs)
	children.Unlock()
	if left != 0 {
		t.Errorf("%d server processes still tracked after the run", left)
	}
}

func TestBlobReader(t *testing.T) {
	const size = 3<<20 + 12345
	whole, err := io.ReadAll(newBlobReader("k", size))
	if err != nil || len(whole) != size {
		t.Fatalf("ReadAll: %d bytes, %v", len(whole), err)
	}
	var wt bytes.Buffer
	if _, err := newBlobReader("k", size).WriteTo(&wt); err != nil || !bytes.Equal(wt.Bytes(), whole) {
		t.Fatal("WriteTo differs from Read")
	}
	var chunks bytes.Buffer
	r := newBlobReader("k", size)
	for off := int64(0); off < size; off += 1 << 20 {
		io.Copy(&chunks, r.section(off, min(1<<20, size-off)))
	}
	if !bytes.Equal(chunks.Bytes(), whole) {
		t.Fatal("sections differ from Read")
	}
	other, _ := io.ReadAll(newBlobReader("k2", size))
	if bytes.Equal(other, whole) {
		t.Fatal("different keys give the same content")
	}
	if bytes.Equal(whole[:1<<20], whole[1<<20:2<<20]) {
		t.Fatal("blocks repeat")
	}
	sum := sha256.Sum256(whole)
	if got := (&digestCache{}).spec("k", size).digest; got != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Fatalf("digest %s", got)
	}
}

func TestParseChallenge(t *testing.T) {
	s, p := parseChallenge(`Bearer realm="https://r.example/token",service="r.example",scope="repository:a/b:pull,push"`)
	if s != "Bearer" || p["realm"] != "https://r.example/token" || p["service"] != "r.example" || p["scope"] != "repository:a/b:pull,push" {
		t.Fatalf("%q %v", s, p)
	}
	s, p = parseChallenge(`Basic realm="berth"`)
	if s != "Basic" || p["realm"] != "berth" {
		t.Fatalf("%q %v", s, p)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"16MiB": 16 << 20, "1GiB": 1 << 30, "512KiB": 512 << 10, "100": 100, "8M": 8 << 20} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if formatSize(256<<20) != "256MiB" {
		t.Error(formatSize(256 << 20))
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
