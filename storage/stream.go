package storage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync/atomic"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/envelope"
	"gocloud.dev/blob"
)

// partWriter writes a stream of bytes into one or more objects, each at most
// MaxPartSize content bytes, encrypting each with the blob's data key when
// there is one. It is driven by one goroutine at a time.
type partWriter struct {
	s     *Store
	ctx   context.Context
	dk    *envelope.DataKey
	parts []driver.Part // closed objects: durable unless marked Unsynced
	cur   *objectWriter
	// unsynced leaves the objects for the caller to make durable later
	// (see Store.settle), marking them Unsynced.
	unsynced bool
}

// objectWriter streams one object through blob.Bucket.Upload fed by a pipe.
// Upload, unlike a streaming blob.Writer, is safe to abort on every driver
// (gocloud's azureblob crashes when a streaming write fails), and cancelling
// its context before failing the pipe guarantees the object never appears.
type objectWriter struct {
	key    string
	cancel context.CancelFunc
	pipe   *chunkPipe
	done   chan error     // Upload's result
	w      io.Writer      // the pipe, or the encrypting writer over it
	ew     io.WriteCloser // the encrypting writer, or nil
	n      int64
}

// errAborted fails the pipe of an object being abandoned.
var errAborted = errors.New("storage: write aborted")

// abort abandons the object: it is never stored.
func (ow *objectWriter) abort() {
	ow.cancel()
	_ = ow.pipe.CloseWithError(errAborted)
	<-ow.done
}

// newPipe returns a chunkPipe over the store's buffers.
func (s *Store) newPipe() *chunkPipe {
	return newChunkPipe(func() *[]byte { return s.bufs.Get().(*[]byte) }, func(b *[]byte) { s.bufs.Put(b) })
}

func (s *Store) newPartWriter(ctx context.Context, dk *envelope.DataKey) *partWriter {
	return &partWriter{s: s, ctx: ctx, dk: dk}
}

func (pw *partWriter) open() error {
	key := newObjectKey()
	ctx, cancel := context.WithCancel(pw.ctx)
	pipe := pw.s.newPipe()
	ow := &objectWriter{key: key, cancel: cancel, pipe: pipe, done: make(chan error, 1), w: pipe}
	wopts := &blob.WriterOptions{
		ContentType: "application/octet-stream",
		BufferSize:  pw.s.opts.WriteBufferSize,
	}
	if pw.s.opts.Sync != nil {
		// The object will be fsynced: start its disk writes early.
		wb := &writeback{drop: pw.s.dropsCache()}
		wopts.BeforeWrite = wb.beforeWrite
		pipe.wrote = wb.wrote
	}
	go func() {
		err := pw.s.bucket.Upload(ctx, key, pipe, wopts)
		pipe.stop(cmp.Or(err, io.ErrClosedPipe))
		ow.done <- err
	}()
	if pw.dk != nil {
		ew, err := envelope.NewWriter(pipe, pw.dk, []byte(key))
		if err != nil {
			ow.abort()
			return fmt.Errorf("storage: encrypt object: %w", err)
		}
		ow.w, ow.ew = ew, ew
	}
	pw.cur = ow
	return nil
}

// write appends p, rolling over to a new object at MaxPartSize.
func (pw *partWriter) write(p []byte) error {
	for len(p) > 0 {
		if pw.cur == nil {
			if err := pw.open(); err != nil {
				return err
			}
		}
		room := pw.s.opts.MaxPartSize - pw.cur.n
		chunk := p
		if int64(len(chunk)) > room {
			chunk = chunk[:room]
		}
		if _, err := pw.cur.w.Write(chunk); err != nil {
			return fmt.Errorf("storage: write object: %w", err)
		}
		pw.cur.n += int64(len(chunk))
		p = p[len(chunk):]
		if pw.cur.n == pw.s.opts.MaxPartSize {
			if err := pw.closeCurrent(); err != nil {
				return err
			}
		}
	}
	return nil
}

// closeCurrent completes the current object and makes it durable, unless
// pw.unsynced.
func (pw *partWriter) closeCurrent() error {
	ow := pw.cur
	pw.cur = nil
	defer ow.cancel()
	if ow.ew != nil {
		if err := ow.ew.Close(); err != nil {
			ow.abort()
			return fmt.Errorf("storage: finish encrypting object: %w", err)
		}
	}
	_ = ow.pipe.Close()
	if err := <-ow.done; err != nil {
		return fmt.Errorf("storage: write object: %w", err)
	}
	part := driver.Part{Key: ow.key, Size: ow.n}
	if pw.unsynced && pw.s.opts.Sync != nil {
		part.Unsynced = pw.s.instance
		pw.parts = append(pw.parts, part)
		return nil
	}
	pw.parts = append(pw.parts, part)
	return pw.s.syncObject(pw.ctx, ow.key, ow.n)
}

// finish completes the last object and returns every part written.
func (pw *partWriter) finish() ([]driver.Part, error) {
	if pw.cur != nil {
		if err := pw.closeCurrent(); err != nil {
			pw.abort()
			return nil, err
		}
	}
	return pw.parts, nil
}

// abort cancels the object being written (so it never appears) and deletes
// the ones already completed.
func (pw *partWriter) abort() {
	if ow := pw.cur; ow != nil {
		pw.cur = nil
		ow.abort()
	}
	pw.s.deleteParts(pw.ctx, pw.parts)
	pw.parts = nil
}

// stream copies r into pw and into every hash. Hashing runs on the calling
// goroutine while encryption and object writes run on another, with a few
// fixed-size buffers between them, so memory stays constant whatever the
// length. limit >= 0 caps the bytes read. It returns the number of bytes
// read; the caller finishes or aborts pw.
func (s *Store) stream(ctx context.Context, r io.Reader, limit int64, pw *partWriter, hashes ...hash.Hash) (int64, error) {
	if limit >= 0 {
		r = io.LimitReader(r, limit)
	}
	free := make(chan *[]byte, defaultChunks)
	full := make(chan []byte, defaultChunks)
	for range defaultChunks {
		free <- s.bufs.Get().(*[]byte)
	}
	wdone := make(chan error, 1)
	var failed atomic.Bool
	go func() {
		var werr error
		for b := range full {
			if werr == nil {
				if werr = pw.write(b); werr != nil {
					failed.Store(true)
				}
			}
			b = b[:cap(b)]
			free <- &b
		}
		wdone <- werr
	}()

	var n int64
	var rerr error
	for {
		var bp *[]byte
		select {
		case bp = <-free:
		case <-ctx.Done():
			rerr = ctx.Err()
		}
		if rerr != nil {
			break
		}
		m, err := io.ReadFull(r, *bp)
		if m > 0 {
			b := (*bp)[:m]
			full <- b
			for _, h := range hashes {
				h.Write(b)
			}
			n += int64(m)
		} else {
			free <- bp
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			rerr = fmt.Errorf("storage: read content: %w", err)
			break
		}
		if failed.Load() { // the writer failed; stop reading
			break
		}
	}
	close(full)
	werr := <-wdone
	close(free)
	for bp := range free {
		s.bufs.Put(bp)
	}
	if err := errors.Join(rerr, werr); err != nil {
		return n, err
	}
	return n, ctx.Err()
}
