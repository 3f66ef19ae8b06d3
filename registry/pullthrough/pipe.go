package pullthrough

import (
	"io"
	"sync"
)

// ringPipe is an in-memory pipe with a fixed capacity: writes block only
// when it is full, so that the store and the client each go at their own
// pace within that much slack, and memory stays bounded.
type ringPipe struct {
	mu   sync.Mutex
	cond sync.Cond
	buf  []byte
	r, n int   // read position and bytes buffered
	werr error // set by closeWrite: io.EOF or the writer's error
	rerr error // set by closeRead: writes fail with it
}

func newRingPipe(size int) *ringPipe {
	p := &ringPipe{buf: make([]byte, size)}
	p.cond.L = &p.mu
	return p
}

// Write copies p into the pipe, waiting for room; it fails once the
// reader closed.
func (p *ringPipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	written := 0
	for len(b) > 0 {
		for p.n == len(p.buf) && p.rerr == nil && p.werr == nil {
			p.cond.Wait()
		}
		if p.rerr != nil {
			return written, p.rerr
		}
		if p.werr != nil {
			return written, io.ErrClosedPipe
		}
		w := (p.r + p.n) % len(p.buf)
		end := len(p.buf)
		if w < p.r {
			end = p.r
		}
		c := copy(p.buf[w:end], b)
		p.n += c
		written += c
		b = b[c:]
		p.cond.Broadcast()
	}
	return written, nil
}

// Read copies buffered bytes out, waiting for some; after closeWrite it
// returns what is left, then the writer's error (io.EOF on success).
func (p *ringPipe) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.n == 0 && p.werr == nil && p.rerr == nil {
		p.cond.Wait()
	}
	if p.rerr != nil {
		return 0, p.rerr
	}
	if p.n == 0 {
		return 0, p.werr
	}
	end := min(p.r+p.n, len(p.buf))
	c := copy(b, p.buf[p.r:end])
	p.r = (p.r + c) % len(p.buf)
	p.n -= c
	p.cond.Broadcast()
	return c, nil
}

// closeWrite ends the stream: readers get what is buffered, then err, or
// io.EOF when err is nil. Only the first close counts.
func (p *ringPipe) closeWrite(err error) {
	if err == nil {
		err = io.EOF
	}
	p.mu.Lock()
	if p.werr == nil {
		p.werr = err
	}
	p.cond.Broadcast()
	p.mu.Unlock()
}

// closeRead stops the reader: writes fail with err, and so do reads.
func (p *ringPipe) closeRead(err error) {
	p.mu.Lock()
	if p.rerr == nil {
		p.rerr = err
	}
	p.cond.Broadcast()
	p.mu.Unlock()
}
