package storage_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/memmeta"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/secrets/localsecrets"
)

// failAfter accepts limit bytes, then fails.
type failAfter struct {
	limit int
	n     int
}

var errClientGone = errors.New("client gone")

func (w *failAfter) Write(p []byte) (int, error) {
	if w.n+len(p) > w.limit {
		m := w.limit - w.n
		w.n = w.limit
		return m, errClientGone
	}
	w.n += len(p)
	return len(p), nil
}

// TestBlobReaderWriteToWriterError checks that WriteTo returns the
// writer's own error (a client that went away is not corruption) and that
// the reader is done after it.
func TestBlobReaderWriteToWriterError(t *testing.T) {
	ctx := context.Background()
	key, _ := localsecrets.NewRandomKey()
	s, err := storage.New(memblob.OpenBucket(nil), memmeta.New(), &storage.Options{Keeper: localsecrets.NewKeeper(key), MaxPartSize: 300_000})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := bytes.Repeat([]byte("berth"), 200_000)
	d, err := s.PutBlob(ctx, bytes.NewReader(b), storage.Descriptor{Size: int64(len(b))})
	if err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{0, 1000, 299_999, 300_000, 300_001, len(b) - 1} {
		r, err := s.OpenBlob(ctx, d.Digest, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		w := &failAfter{limit: limit}
		n, err := r.WriteTo(w)
		if !errors.Is(err, errClientGone) || errors.Is(err, storage.ErrCorrupt) || n != int64(limit) {
			t.Errorf("limit %d: WriteTo = %d, %v; want %d and the writer's error", limit, n, err, limit)
		}
		if m, err := r.Read(make([]byte, 10)); m != 0 || err == nil {
			t.Errorf("limit %d: Read after a failed WriteTo = %d, %v", limit, m, err)
		}
		r.Close()
	}
	// A whole read by WriteTo, from the middle of the second part.
	r, err := s.OpenBlob(ctx, d.Digest, 400_000, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out bytes.Buffer
	if n, err := r.WriteTo(&out); err != nil || n != int64(len(b)-400_000) || !bytes.Equal(out.Bytes(), b[400_000:]) {
		t.Fatalf("WriteTo = %d, %v", n, err)
	}
	if n, err := r.WriteTo(&out); n != 0 || err != nil {
		t.Fatalf("WriteTo at the end = %d, %v; want 0, nil", n, err)
	}
}
