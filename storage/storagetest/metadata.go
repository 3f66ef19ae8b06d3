package storagetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// NewMetadata returns a fresh, empty metadata backend for one test. The
// suite closes it (the harness may also register its own t.Cleanup). The
// suite's subtests run in parallel, so NewMetadata may be called
// concurrently.
type NewMetadata func(t *testing.T) driver.Metadata

// RunMetadataTests runs the metadata conformance suite against the
// backends newMeta returns. It checks every sentence of the contracts in
// storage/driver: results, error codes (via errors.Is), pagination edges,
// cancellation, and the outcome of concurrent races.
//
// Interfaces beyond driver.Metadata (driver.Repositories, driver.Tags, …)
// are optional upgrades: their subtests run when the backend implements
// them and are skipped, with a message naming the interface, when it does
// not.
func RunMetadataTests(t *testing.T, newMeta NewMetadata) {
	t.Helper()
	open := func(t *testing.T) driver.Metadata {
		t.Helper()
		m := newMeta(t)
		t.Cleanup(func() {
			if err := m.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return m
	}
	t.Run("Blobs", func(t *testing.T) { t.Parallel(); testBlobs(t, open) })
	t.Run("Uploads", func(t *testing.T) { t.Parallel(); testUploads(t, open) })
	t.Run("Cancellation", func(t *testing.T) { t.Parallel(); testCancellation(t, open) })
	t.Run("As", func(t *testing.T) {
		t.Parallel()
		m := open(t)
		a, ok := m.(interface{ As(any) bool })
		if !ok {
			t.Skipf("%T has no As method", m)
		}
		if a.As(nil) {
			t.Error("As(nil) = true, want false")
		}
		var unsupported struct{}
		if a.As(&unsupported) {
			t.Error("As(*struct{}) = true, want false")
		}
	})
	runRegistryTests(t, open)
}

// digestOf returns the sha256 digest of s.
func digestOf(s string) digest.Digest {
	return digest.NewDigestFromBytes(digest.SHA256, sha256Sum(s))
}

func sha256Sum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// at returns a fixed time plus n seconds, with a nanosecond part so that
// backends must keep full precision.
func at(n int) time.Time {
	return time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC).Add(time.Duration(n) * time.Second)
}

func testBlob(s string, parts ...string) *driver.Blob {
	b := &driver.Blob{Digest: digestOf(s), Size: int64(len(s)), CreatedAt: at(0)}
	for _, p := range parts {
		b.Parts = append(b.Parts, driver.Part{Key: p, Size: int64(len(s) / max(1, len(parts)))})
	}
	return b
}

func sameEncryption(a, b *driver.Encryption) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Scheme == b.Scheme && a.KeyID == b.KeyID && string(a.WrappedKey) == string(b.WrappedKey)
}

func sameParts(a, b []driver.Part) bool { return slices.Equal(a, b) }

// diffBlob describes how got differs from want, or returns "".
func diffBlob(got, want *driver.Blob) string {
	switch {
	case got == nil:
		return "got nil blob"
	case got.Digest != want.Digest:
		return fmt.Sprintf("Digest = %s, want %s", got.Digest, want.Digest)
	case got.Size != want.Size:
		return fmt.Sprintf("Size = %d, want %d", got.Size, want.Size)
	case !sameParts(got.Parts, want.Parts):
		return fmt.Sprintf("Parts = %v, want %v", got.Parts, want.Parts)
	case !sameEncryption(got.Encryption, want.Encryption):
		return fmt.Sprintf("Encryption = %+v, want %+v", got.Encryption, want.Encryption)
	case !sameTime(got.CreatedAt, want.CreatedAt):
		return fmt.Sprintf("CreatedAt = %v, want %v", got.CreatedAt, want.CreatedAt)
	}
	return ""
}

func diffUpload(got, want *driver.Upload) string {
	switch {
	case got == nil:
		return "got nil upload"
	case got.ID != want.ID:
		return fmt.Sprintf("ID = %q, want %q", got.ID, want.ID)
	case got.Version != want.Version:
		return fmt.Sprintf("Version = %d, want %d", got.Version, want.Version)
	case got.Offset != want.Offset:
		return fmt.Sprintf("Offset = %d, want %d", got.Offset, want.Offset)
	case !sameParts(got.Parts, want.Parts):
		return fmt.Sprintf("Parts = %v, want %v", got.Parts, want.Parts)
	case len(got.Hashes) != len(want.Hashes):
		return fmt.Sprintf("Hashes = %v, want %v", got.Hashes, want.Hashes)
	case !sameEncryption(got.Encryption, want.Encryption):
		return fmt.Sprintf("Encryption = %+v, want %+v", got.Encryption, want.Encryption)
	case len(got.Labels) != len(want.Labels) || (len(want.Labels) > 0 && !maps.Equal(got.Labels, want.Labels)):
		return fmt.Sprintf("Labels = %v, want %v", got.Labels, want.Labels)
	case !sameTime(got.CreatedAt, want.CreatedAt):
		return fmt.Sprintf("CreatedAt = %v, want %v", got.CreatedAt, want.CreatedAt)
	case !sameTime(got.UpdatedAt, want.UpdatedAt):
		return fmt.Sprintf("UpdatedAt = %v, want %v", got.UpdatedAt, want.UpdatedAt)
	}
	for i := range got.Hashes {
		if got.Hashes[i].Algorithm != want.Hashes[i].Algorithm || string(got.Hashes[i].State) != string(want.Hashes[i].State) {
			return fmt.Sprintf("Hashes[%d] = %v, want %v", i, got.Hashes[i], want.Hashes[i])
		}
	}
	return ""
}

// wantErr fails t unless err matches target by errors.Is.
func wantErr(t *testing.T, op string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error = %v, want one wrapping %v", op, err, target)
	}
}

func must(t *testing.T, op string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
}

func testBlobs(t *testing.T, open NewMetadata) {
	ctx := context.Background()

	t.Run("GetMissing", func(t *testing.T) {
		m := open(t)
		_, err := m.GetBlob(ctx, digestOf("missing"))
		wantErr(t, "GetBlob", err, driver.ErrNotFound)
		_, err = m.DeleteBlob(ctx, digestOf("missing"))
		wantErr(t, "DeleteBlob", err, driver.ErrNotFound)
		err = m.SetBlobEncryption(ctx, digestOf("missing"), nil, &driver.Encryption{Scheme: "x"})
		wantErr(t, "SetBlobEncryption", err, driver.ErrNotFound)
	})

	t.Run("PutGetDelete", func(t *testing.T) {
		m := open(t)
		b := testBlob("hello", "p/1", "p/2")
		b.Encryption = &driver.Encryption{Scheme: "envelope-v1", KeyID: "kek-1", WrappedKey: []byte{0, 1, 2, 255}}
		stored, created, err := m.PutBlob(ctx, b)
		must(t, "PutBlob", err)
		if !created {
			t.Errorf("PutBlob of a new digest: created = false")
		}
		if d := diffBlob(stored, b); d != "" {
			t.Errorf("PutBlob stored: %s", d)
		}
		got, err := m.GetBlob(ctx, b.Digest)
		must(t, "GetBlob", err)
		if d := diffBlob(got, b); d != "" {
			t.Errorf("GetBlob: %s", d)
		}
		// Records are not retained: changing ours or the returned one
		// changes nothing stored.
		b.Parts[0].Key = "changed"
		got.Parts[1].Key = "changed"
		got.Encryption.WrappedKey[0] = 9
		again, err := m.GetBlob(ctx, b.Digest)
		must(t, "GetBlob", err)
		if again.Parts[0].Key != "p/1" || again.Parts[1].Key != "p/2" || again.Encryption.WrappedKey[0] != 0 {
			t.Errorf("backend retained a caller's record: %+v", again)
		}
		del, err := m.DeleteBlob(ctx, b.Digest)
		must(t, "DeleteBlob", err)
		if del.Digest != b.Digest || len(del.Parts) != 2 {
			t.Errorf("DeleteBlob returned %+v", del)
		}
		_, err = m.GetBlob(ctx, b.Digest)
		wantErr(t, "GetBlob after delete", err, driver.ErrNotFound)
		_, err = m.DeleteBlob(ctx, b.Digest)
		wantErr(t, "DeleteBlob twice", err, driver.ErrNotFound)
	})

	t.Run("PlainAndEmpty", func(t *testing.T) {
		m := open(t)
		b := &driver.Blob{Digest: digestOf(""), Size: 0, CreatedAt: at(1)}
		_, _, err := m.PutBlob(ctx, b)
		must(t, "PutBlob", err)
		got, err := m.GetBlob(ctx, b.Digest)
		must(t, "GetBlob", err)
		if got.Encryption != nil || len(got.Parts) != 0 || got.Size != 0 {
			t.Errorf("GetBlob = %+v, want no parts and no encryption", got)
		}
	})

	t.Run("FirstWriterWins", func(t *testing.T) {
		m := open(t)
		first := testBlob("same", "first")
		_, created, err := m.PutBlob(ctx, first)
		must(t, "PutBlob", err)
		if !created {
			t.Fatal("first PutBlob: created = false")
		}
		stored, created, err := m.PutBlob(ctx, testBlob("same", "second"))
		must(t, "PutBlob", err)
		if created {
			t.Error("second PutBlob: created = true")
		}
		if d := diffBlob(stored, first); d != "" {
			t.Errorf("second PutBlob returned: %s", d)
		}
	})

	t.Run("RewriteRenews", func(t *testing.T) {
		m := open(t)
		old := testBlob("renewed", "first")
		_, _, err := m.PutBlob(ctx, old)
		must(t, "PutBlob", err)
		again := testBlob("renewed", "second")
		again.CreatedAt = old.CreatedAt.Add(time.Hour)
		stored, created, err := m.PutBlob(ctx, again)
		must(t, "PutBlob", err)
		if created || !stored.CreatedAt.Equal(again.CreatedAt) || stored.Parts[0] != old.Parts[0] {
			t.Errorf("second PutBlob: created %v, stored %+v; want the first record, CreatedAt %v", created, stored, again.CreatedAt)
		}
		// An older writer never moves CreatedAt back.
		older := testBlob("renewed", "third")
		stored, _, err = m.PutBlob(ctx, older)
		must(t, "PutBlob", err)
		if !stored.CreatedAt.Equal(again.CreatedAt) {
			t.Errorf("older PutBlob moved CreatedAt to %v", stored.CreatedAt)
		}
		got, err := m.GetBlob(ctx, old.Digest)
		must(t, "GetBlob", err)
		if !got.CreatedAt.Equal(again.CreatedAt) {
			t.Errorf("GetBlob CreatedAt = %v, want %v", got.CreatedAt, again.CreatedAt)
		}
	})

	t.Run("ConcurrentPut", func(t *testing.T) {
		m := open(t)
		const n = 16
		var wg sync.WaitGroup
		var wins atomic.Int32
		results := make([]*driver.Blob, n)
		for i := range n {
			wg.Go(func() {
				stored, created, err := m.PutBlob(ctx, testBlob("race", fmt.Sprintf("part-%d", i)))
				if err != nil {
					t.Errorf("PutBlob %d: %v", i, err)
					return
				}
				if created {
					wins.Add(1)
				}
				results[i] = stored
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d PutBlobs of one digest reported created, want exactly 1", wins.Load())
		}
		final, err := m.GetBlob(ctx, digestOf("race"))
		must(t, "GetBlob", err)
		for i, r := range results {
			if r != nil && !sameParts(r.Parts, final.Parts) {
				t.Errorf("PutBlob %d returned parts %v, stored %v", i, r.Parts, final.Parts)
			}
		}
	})

	t.Run("List", func(t *testing.T) {
		m := open(t)
		got, err := m.ListBlobs(ctx, "", 10)
		must(t, "ListBlobs", err)
		if got == nil || len(got) != 0 {
			t.Errorf("ListBlobs of empty backend = %v, want an empty slice", got)
		}
		var want []digest.Digest
		for i := range 7 {
			b := testBlob(fmt.Sprintf("blob-%d", i), "k")
			_, _, err := m.PutBlob(ctx, b)
			must(t, "PutBlob", err)
			want = append(want, b.Digest)
		}
		slices.Sort(want)
		var seen []digest.Digest
		after := digest.Digest("")
		for range 10 {
			page, err := m.ListBlobs(ctx, after, 3)
			must(t, "ListBlobs", err)
			if len(page) > 3 {
				t.Fatalf("ListBlobs limit 3 returned %d", len(page))
			}
			if len(page) == 0 {
				break
			}
			for _, b := range page {
				seen = append(seen, b.Digest)
			}
			after = page[len(page)-1].Digest
		}
		if !slices.Equal(seen, want) {
			t.Errorf("paged ListBlobs = %v, want %v", seen, want)
		}
		page, err := m.ListBlobs(ctx, want[2], 2)
		must(t, "ListBlobs", err)
		if len(page) != 2 || page[0].Digest != want[3] || page[1].Digest != want[4] {
			t.Errorf("ListBlobs(after %s, 2) = %v", want[2], page)
		}
		page, err = m.ListBlobs(ctx, want[6], 5)
		must(t, "ListBlobs", err)
		if page == nil || len(page) != 0 {
			t.Errorf("ListBlobs past the end = %v, want an empty slice", page)
		}
	})

	t.Run("SetBlobEncryption", func(t *testing.T) {
		m := open(t)
		plain := testBlob("plain", "k")
		_, _, err := m.PutBlob(ctx, plain)
		must(t, "PutBlob", err)
		e1 := &driver.Encryption{Scheme: "s", KeyID: "kek-1", WrappedKey: []byte("wrapped-1")}
		e2 := &driver.Encryption{Scheme: "s", KeyID: "kek-2", WrappedKey: []byte("wrapped-2")}
		wantErr(t, "SetBlobEncryption with wrong prev", m.SetBlobEncryption(ctx, plain.Digest, e2, e1), driver.ErrConflict)
		must(t, "SetBlobEncryption(nil → e1)", m.SetBlobEncryption(ctx, plain.Digest, nil, e1))
		wantErr(t, "SetBlobEncryption with stale nil prev", m.SetBlobEncryption(ctx, plain.Digest, nil, e2), driver.ErrConflict)
		must(t, "SetBlobEncryption(e1 → e2)", m.SetBlobEncryption(ctx, plain.Digest, e1, e2))
		got, err := m.GetBlob(ctx, plain.Digest)
		must(t, "GetBlob", err)
		if !sameEncryption(got.Encryption, e2) {
			t.Errorf("Encryption = %+v, want %+v", got.Encryption, e2)
		}

		// Concurrent rotations from the same prev: exactly one wins.
		var wg sync.WaitGroup
		var wins, conflicts atomic.Int32
		for i := range 8 {
			wg.Go(func() {
				next := &driver.Encryption{Scheme: "s", KeyID: fmt.Sprintf("kek-3-%d", i), WrappedKey: []byte{byte(i)}}
				err := m.SetBlobEncryption(ctx, plain.Digest, e2, next)
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, driver.ErrConflict):
					conflicts.Add(1)
				default:
					t.Errorf("SetBlobEncryption: %v", err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 || conflicts.Load() != 7 {
			t.Errorf("concurrent SetBlobEncryption: %d wins, %d conflicts; want 1 and 7", wins.Load(), conflicts.Load())
		}
	})
}

func testUpload(id string, n int) *driver.Upload {
	return &driver.Upload{
		ID:      id,
		Version: 1,
		Offset:  int64(n),
		Parts:   []driver.Part{{Key: id + "/0", Size: int64(n)}},
		Hashes: []driver.HashState{
			{Algorithm: digest.SHA256, State: []byte{1, 2, 3}},
			{Algorithm: digest.SHA512, State: []byte{4, 5}},
		},
		Encryption: &driver.Encryption{Scheme: "s", KeyID: "k", WrappedKey: []byte("dek")},
		Labels:     map[string]string{"repository": "team/app"},
		CreatedAt:  at(0),
		UpdatedAt:  at(n),
	}
}

func testUploads(t *testing.T, open NewMetadata) {
	ctx := context.Background()

	t.Run("Missing", func(t *testing.T) {
		m := open(t)
		_, err := m.GetUpload(ctx, "nope")
		wantErr(t, "GetUpload", err, driver.ErrNotFound)
		_, err = m.DeleteUpload(ctx, "nope")
		wantErr(t, "DeleteUpload", err, driver.ErrNotFound)
		u := testUpload("nope", 1)
		u.Version = 2
		wantErr(t, "UpdateUpload", m.UpdateUpload(ctx, u), driver.ErrNotFound)
		_, _, err = m.CommitUpload(ctx, "nope", 1, testBlob("x"))
		wantErr(t, "CommitUpload", err, driver.ErrNotFound)
	})

	t.Run("Lifecycle", func(t *testing.T) {
		m := open(t)
		u := testUpload("u1", 5)
		must(t, "CreateUpload", m.CreateUpload(ctx, u))
		wantErr(t, "CreateUpload twice", m.CreateUpload(ctx, testUpload("u1", 9)), driver.ErrAlreadyExists)
		got, err := m.GetUpload(ctx, "u1")
		must(t, "GetUpload", err)
		if d := diffUpload(got, u); d != "" {
			t.Errorf("GetUpload: %s", d)
		}
		got.Labels["repository"] = "changed"
		got.Hashes[0].State[0] = 42

		next := testUpload("u1", 10)
		next.Version = 2
		next.Parts = append(next.Parts, driver.Part{Key: "u1/1", Size: 5})
		next.Labels = nil
		must(t, "UpdateUpload", m.UpdateUpload(ctx, next))
		got, err = m.GetUpload(ctx, "u1")
		must(t, "GetUpload", err)
		if d := diffUpload(got, next); d != "" {
			t.Errorf("GetUpload after update: %s", d)
		}

		stale := testUpload("u1", 11)
		stale.Version = 2 // based on version 1, already replaced
		wantErr(t, "UpdateUpload with stale version", m.UpdateUpload(ctx, stale), driver.ErrConflict)
		ahead := testUpload("u1", 11)
		ahead.Version = 5
		wantErr(t, "UpdateUpload skipping versions", m.UpdateUpload(ctx, ahead), driver.ErrConflict)

		del, err := m.DeleteUpload(ctx, "u1")
		must(t, "DeleteUpload", err)
		if d := diffUpload(del, next); d != "" {
			t.Errorf("DeleteUpload returned: %s", d)
		}
		_, err = m.GetUpload(ctx, "u1")
		wantErr(t, "GetUpload after delete", err, driver.ErrNotFound)
	})

	t.Run("PlainUpload", func(t *testing.T) {
		m := open(t)
		u := &driver.Upload{ID: "plain", Version: 1, CreatedAt: at(0), UpdatedAt: at(0)}
		must(t, "CreateUpload", m.CreateUpload(ctx, u))
		got, err := m.GetUpload(ctx, "plain")
		must(t, "GetUpload", err)
		if got.Encryption != nil || len(got.Parts) != 0 || len(got.Hashes) != 0 || len(got.Labels) != 0 {
			t.Errorf("GetUpload = %+v, want an empty session", got)
		}
	})

	t.Run("ConcurrentUpdate", func(t *testing.T) {
		m := open(t)
		must(t, "CreateUpload", m.CreateUpload(ctx, testUpload("cas", 1)))
		const n = 16
		var wg sync.WaitGroup
		var wins, conflicts atomic.Int32
		for i := range n {
			wg.Go(func() {
				u := testUpload("cas", 100+i)
				u.Version = 2
				err := m.UpdateUpload(ctx, u)
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, driver.ErrConflict):
					conflicts.Add(1)
				default:
					t.Errorf("UpdateUpload: %v", err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 || conflicts.Load() != n-1 {
			t.Errorf("concurrent UpdateUpload from one version: %d wins, %d conflicts; want 1 and %d", wins.Load(), conflicts.Load(), n-1)
		}
		got, err := m.GetUpload(ctx, "cas")
		must(t, "GetUpload", err)
		if got.Version != 2 {
			t.Errorf("Version = %d, want 2", got.Version)
		}
	})

	t.Run("List", func(t *testing.T) {
		m := open(t)
		got, err := m.ListUploads(ctx, at(1000), 10)
		must(t, "ListUploads", err)
		if len(got) != 0 {
			t.Errorf("ListUploads of empty backend = %v", got)
		}
		for i, id := range []string{"c", "a", "d", "b", "e"} {
			u := testUpload(id, 1)
			u.UpdatedAt = at(i / 2) // c,a at 0; d,b at 1; e at 2
			must(t, "CreateUpload", m.CreateUpload(ctx, u))
		}
		ids := func(us []*driver.Upload) []string {
			var s []string
			for _, u := range us {
				s = append(s, u.ID)
			}
			return s
		}
		got, err = m.ListUploads(ctx, at(2), 10)
		must(t, "ListUploads", err)
		if want := []string{"a", "c", "b", "d"}; !slices.Equal(ids(got), want) {
			t.Errorf("ListUploads(before at(2)) = %v, want %v (by UpdatedAt, then ID)", ids(got), want)
		}
		got, err = m.ListUploads(ctx, at(2), 3)
		must(t, "ListUploads", err)
		if want := []string{"a", "c", "b"}; !slices.Equal(ids(got), want) {
			t.Errorf("ListUploads(limit 3) = %v, want %v", ids(got), want)
		}
		got, err = m.ListUploads(ctx, at(0), 10)
		must(t, "ListUploads", err)
		if len(got) != 0 {
			t.Errorf("ListUploads(before the oldest) = %v, want none", ids(got))
		}
	})

	t.Run("Commit", func(t *testing.T) {
		m := open(t)
		must(t, "CreateUpload", m.CreateUpload(ctx, testUpload("c1", 4)))
		b := testBlob("committed", "c1/0")
		_, _, err := m.CommitUpload(ctx, "c1", 2, b)
		wantErr(t, "CommitUpload at a wrong version", err, driver.ErrConflict)
		if _, err := m.GetUpload(ctx, "c1"); err != nil {
			t.Errorf("a failed CommitUpload removed the session: %v", err)
		}
		if _, err := m.GetBlob(ctx, b.Digest); !errors.Is(err, driver.ErrNotFound) {
			t.Errorf("a failed CommitUpload recorded the blob: %v", err)
		}
		stored, created, err := m.CommitUpload(ctx, "c1", 1, b)
		must(t, "CommitUpload", err)
		if !created {
			t.Error("CommitUpload of a new digest: created = false")
		}
		if d := diffBlob(stored, b); d != "" {
			t.Errorf("CommitUpload stored: %s", d)
		}
		_, err = m.GetUpload(ctx, "c1")
		wantErr(t, "GetUpload after commit", err, driver.ErrNotFound)
		got, err := m.GetBlob(ctx, b.Digest)
		must(t, "GetBlob after commit", err)
		if d := diffBlob(got, b); d != "" {
			t.Errorf("GetBlob after commit: %s", d)
		}
		_, _, err = m.CommitUpload(ctx, "c1", 1, b)
		wantErr(t, "CommitUpload twice", err, driver.ErrNotFound)

		// Committing a digest that exists removes the session and keeps
		// the first record.
		must(t, "CreateUpload", m.CreateUpload(ctx, testUpload("c2", 4)))
		stored, created, err = m.CommitUpload(ctx, "c2", 1, testBlob("committed", "c2/0"))
		must(t, "CommitUpload of an existing digest", err)
		if created {
			t.Error("CommitUpload of an existing digest: created = true")
		}
		if d := diffBlob(stored, b); d != "" {
			t.Errorf("CommitUpload of an existing digest returned: %s", d)
		}
		_, err = m.GetUpload(ctx, "c2")
		wantErr(t, "GetUpload after commit", err, driver.ErrNotFound)
	})

	t.Run("ConcurrentCommitOneSession", func(t *testing.T) {
		m := open(t)
		must(t, "CreateUpload", m.CreateUpload(ctx, testUpload("one", 4)))
		var wg sync.WaitGroup
		var wins atomic.Int32
		for i := range 8 {
			wg.Go(func() {
				_, created, err := m.CommitUpload(ctx, "one", 1, testBlob("one-blob", fmt.Sprint(i)))
				switch {
				case err == nil:
					if !created {
						t.Errorf("winning CommitUpload: created = false")
					}
					wins.Add(1)
				case errors.Is(err, driver.ErrNotFound), errors.Is(err, driver.ErrConflict):
				default:
					t.Errorf("CommitUpload: %v", err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Errorf("%d concurrent CommitUploads of one session succeeded, want 1", wins.Load())
		}
	})

	t.Run("ConcurrentCommitOneDigest", func(t *testing.T) {
		m := open(t)
		const n = 8
		for i := range n {
			must(t, "CreateUpload", m.CreateUpload(ctx, testUpload(fmt.Sprintf("s%d", i), 4)))
		}
		var wg sync.WaitGroup
		var created atomic.Int32
		for i := range n {
			wg.Go(func() {
				_, c, err := m.CommitUpload(ctx, fmt.Sprintf("s%d", i), 1, testBlob("shared", fmt.Sprint(i)))
				if err != nil {
					t.Errorf("CommitUpload: %v", err)
				}
				if c {
					created.Add(1)
				}
			})
		}
		wg.Wait()
		if created.Load() != 1 {
			t.Errorf("%d CommitUploads of one digest reported created, want 1", created.Load())
		}
		left, err := m.ListUploads(ctx, at(1000), -1)
		must(t, "ListUploads", err)
		if len(left) != 0 {
			t.Errorf("%d sessions left after committing all", len(left))
		}
	})
}

// cancelled returns a context that is already cancelled.
func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func testCancellation(t *testing.T, open NewMetadata) {
	m := open(t)
	ctx := context.Background()
	b := testBlob("c", "k")
	_, _, err := m.PutBlob(ctx, b)
	must(t, "PutBlob", err)
	must(t, "CreateUpload", m.CreateUpload(ctx, testUpload("u", 1)))

	c := cancelled()
	check := func(op string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s with a cancelled context succeeded", op)
		}
	}
	_, _, err = m.PutBlob(c, testBlob("d"))
	check("PutBlob", err)
	_, err = m.GetBlob(c, b.Digest)
	check("GetBlob", err)
	_, err = m.ListBlobs(c, "", 10)
	check("ListBlobs", err)
	check("SetBlobEncryption", m.SetBlobEncryption(c, b.Digest, nil, &driver.Encryption{}))
	_, err = m.DeleteBlob(c, b.Digest)
	check("DeleteBlob", err)
	check("CreateUpload", m.CreateUpload(c, testUpload("v", 1)))
	_, err = m.GetUpload(c, "u")
	check("GetUpload", err)
	u := testUpload("u", 2)
	u.Version = 2
	check("UpdateUpload", m.UpdateUpload(c, u))
	_, err = m.ListUploads(c, at(100), 10)
	check("ListUploads", err)
	_, _, err = m.CommitUpload(c, "u", 1, testBlob("e"))
	check("CommitUpload", err)
	_, err = m.DeleteUpload(c, "u")
	check("DeleteUpload", err)

	// Nothing changed.
	if _, err := m.GetBlob(ctx, b.Digest); err != nil {
		t.Errorf("blob gone after cancelled calls: %v", err)
	}
	if got, err := m.GetUpload(ctx, "u"); err != nil || got.Version != 1 {
		t.Errorf("upload after cancelled calls = %+v, %v", got, err)
	}
	if _, err := m.GetBlob(ctx, testBlob("d").Digest); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("cancelled PutBlob recorded a blob: %v", err)
	}
}

// sameTime reports whether a and b are equal to the microsecond, the
// precision the driver contracts promise.
func sameTime(a, b time.Time) bool {
	return a.Truncate(time.Microsecond).Equal(b.Truncate(time.Microsecond))
}
