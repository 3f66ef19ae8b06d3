package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/events"
	"github.com/berth-dev/berth/storage/driver"
	"gocloud.dev/blob"
	"gocloud.dev/pubsub"
)

// EventAccessLogStarted is the event registryd appends to the outbox at
// every start, naming where access records go from then on and where they
// went before, so that a redirected log is announced on the monitored
// event channels (CCC.Core.CN09.AR03).
const EventAccessLogStarted = "dev.berth.accesslog.started"

// accessLogSink is where access records go besides DATA/access-*.log:
// the external copy of --access-log-url, and the chain they continue.
type accessLogSink struct {
	// Writer is the external copy, or nil.
	Writer events.AccessWriter
	// FirstSeq and PrevHash continue the chain of the previous start's
	// log (zero: a new chain).
	FirstSeq int64
	PrevHash string
	close    func()
}

// Close releases the external destination.
func (s *accessLogSink) Close() {
	if s.close != nil {
		s.close()
	}
}

// openAccessLogSink opens the external copy of the access log
// (--access-log-url: a gocloud.dev bucket, written one object per record
// under access/<start time>/, or a pubsub topic), refusing destinations
// the registry itself stores data in; it continues the hash chain of the
// previous start's local log, and announces the destinations with an
// EventAccessLogStarted event in the outbox.
func openAccessLogSink(ctx context.Context, c *config, localLog string, outbox driver.Outbox, start time.Time) (*accessLogSink, error) {
	s := &accessLogSink{}
	dest := "file://" + filepath.ToSlash(localLog)
	if c.accessLogURL != "" {
		if err := checkAccessLogURL(c); err != nil {
			return nil, err
		}
		u, _ := url.Parse(c.accessLogURL)
		switch {
		case blob.DefaultURLMux().ValidBucketScheme(u.Scheme):
			b, err := blob.OpenBucket(ctx, c.accessLogURL)
			if err != nil {
				return nil, fmt.Errorf("--access-log-url: %w", err)
			}
			prefix := "access/" + start.UTC().Format("20060102T150405.000000000Z") + "/"
			s.Writer, s.close = events.NewBucketAccessWriter(b, prefix), func() { _ = b.Close() }
			dest = events.RedactURL(c.accessLogURL) + " (prefix " + prefix + ")"
		case pubsub.DefaultURLMux().ValidTopicScheme(u.Scheme):
			t, err := pubsub.OpenTopic(ctx, c.accessLogURL)
			if err != nil {
				return nil, fmt.Errorf("--access-log-url: %w", err)
			}
			s.Writer, s.close = events.NewTopicAccessWriter(t), func() { _ = t.Shutdown(context.Background()) }
			dest = events.RedactURL(c.accessLogURL)
		default:
			return nil, fmt.Errorf("--access-log-url %s: the scheme %q is neither a registered bucket nor topic scheme", events.RedactURL(c.accessLogURL), u.Scheme)
		}
	}
	seq, hash, prevLog, err := lastAccessRecord(c.data)
	if err != nil {
		s.Close()
		return nil, err
	}
	if seq > 0 {
		s.FirstSeq, s.PrevHash = seq+1, hash
	}
	destFile := filepath.Join(c.data, "access-log-destination")
	prevDest := ""
	if b, err := os.ReadFile(destFile); err == nil {
		prevDest = strings.TrimSpace(string(b))
	}
	external := events.RedactURL(c.accessLogURL)
	data, _ := json.Marshal(map[string]any{
		"localLog": filepath.Base(localLog), "previousLocalLog": prevLog,
		"external": external, "previousExternal": prevDest, "redirected": prevDest != external,
		"firstSeq": max(s.FirstSeq, 1), "prevHash": s.PrevHash,
	})
	if err := outbox.AppendEvents(ctx, driver.Event{Type: EventAccessLogStarted, Subject: dest, Data: data, CreatedAt: start}); err != nil {
		s.Close()
		return nil, fmt.Errorf("announce the access log: %w", err)
	}
	if err := os.WriteFile(destFile, []byte(external+"\n"), 0o600); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// checkAccessLogURL refuses an external access-log destination that the
// registry keeps its own data in: the blob bucket (or a prefix of it), a
// directory inside --data, or an in-process memory destination.
func checkAccessLogURL(c *config) error {
	u, err := url.Parse(c.accessLogURL)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("--access-log-url %s: not a URL", events.RedactURL(c.accessLogURL))
	}
	shown := events.RedactURL(c.accessLogURL)
	if u.Scheme == "mem" {
		return fmt.Errorf("--access-log-url %s: an in-memory destination lives and dies with the registry; name one outside it", shown)
	}
	if u.Scheme == "file" {
		dir, err := filepath.Abs(filepath.FromSlash(u.Path))
		if err != nil {
			return err
		}
		if inside(dir, c.data) {
			return fmt.Errorf("--access-log-url %s: inside the data directory %s, which the registry itself can rewrite; name a destination outside it", shown, c.data)
		}
	}
	if b, err := url.Parse(c.blobURL); err == nil && b.Scheme == u.Scheme && b.Host == u.Host {
		bp, ap := strings.TrimSuffix(b.Path, "/")+"/", strings.TrimSuffix(u.Path, "/")+"/"
		if strings.HasPrefix(ap, bp) || strings.HasPrefix(bp, ap) {
			return fmt.Errorf("--access-log-url %s: the same bucket as --blob-url; name a bucket the registry does not store blobs in", shown)
		}
	}
	return nil
}

// inside reports whether path is dir or below it.
func inside(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// lastAccessRecord returns the sequence number and hash of the last record
// of the most recent access log in dir, and that log's name; zeros when
// there is none.
func lastAccessRecord(dir string) (int64, string, string, error) {
	logs, err := filepath.Glob(filepath.Join(dir, "access-*.log"))
	if err != nil {
		return 0, "", "", err
	}
	slices.Sort(logs) // names carry the start time, so they sort in time order
	for i := len(logs) - 1; i >= 0; i-- {
		f, err := os.Open(logs[i])
		if err != nil {
			return 0, "", "", err
		}
		var last []byte
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
				last = append(last[:0], line...)
			}
		}
		err = errors.Join(sc.Err(), f.Close())
		if err != nil {
			return 0, "", "", fmt.Errorf("read %s: %w", logs[i], err)
		}
		if last == nil {
			continue
		}
		rec, err := events.DecodeAccessRecord(last)
		if err != nil {
			return 0, "", "", fmt.Errorf("%s: last record: %w", logs[i], err)
		}
		hash, err := rec.Hash()
		if err != nil {
			return 0, "", "", err
		}
		return rec.Seq, hash, filepath.Base(logs[i]), nil
	}
	return 0, "", "", nil
}

// logAccessSink describes the access log's destinations at start-up.
func logAccessSink(log *slog.Logger, localLog string, s *accessLogSink, c *config) {
	log.Info("access log", "local", localLog, "external", events.RedactURL(c.accessLogURL), "firstSeq", max(s.FirstSeq, 1))
}
