package storage

import (
	"io"
	"sync"
)

// chunkPipe connects the goroutine that encrypts an object with the one
// that uploads it. Unlike io.Pipe, whose every Write waits for a Read, it
// copies writes into a few fixed-size buffers that it hands over through a
// bounded queue, so the writer waits only when the uploader falls behind;
// and it implements io.WriterTo, so uploaders that copy (gocloud's
// Writer.ReadFrom, io.Copy) write those buffers straight to their
// destination. Memory is bounded by the number of buffers.
type chunkPipe struct {
	get  func() *[]byte // a buffer of the chunk size
	put  func(*[]byte)
	full chan *[]byte  // filled buffers, in order; closed by the writer
	free chan struct{} // tokens: buffers the writer may still take
	done chan struct{} // closed when the reader stops

	// Writer side.
	cur *[]byte
	n   int // bytes in cur

	mu   sync.Mutex
	werr error // why the writer closed (nil: io.EOF)
	rerr error // why the reader stopped

	// Reader side.
	rb   *[]byte
	rlen int
	roff int
	// wrote, when set, is told how many bytes WriteTo wrote after each
	// successful write, on the reader's goroutine.
	wrote func(n int)
}

// pipeBuffers is how many buffers one object's pipe may hold.
const pipeBuffers = 4

func newChunkPipe(get func() *[]byte, put func(*[]byte)) *chunkPipe {
	p := &chunkPipe{get: get, put: put, full: make(chan *[]byte, pipeBuffers), free: make(chan struct{}, pipeBuffers), done: make(chan struct{})}
	for range pipeBuffers {
		p.free <- struct{}{}
	}
	return p
}

// item is a filled buffer and its length, carried in the buffer's slice
// length.
func (p *chunkPipe) send() error {
	b := (*p.cur)[:p.n]
	*p.cur = b
	select {
	case p.full <- p.cur:
		p.cur, p.n = nil, 0
		return nil
	case <-p.done:
		return p.readErr()
	}
}

func (p *chunkPipe) readErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rerr != nil {
		return p.rerr
	}
	return io.ErrClosedPipe
}

// Write implements io.Writer (writer side).
func (p *chunkPipe) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		if p.cur == nil {
			select {
			case <-p.free:
			case <-p.done:
				return written, p.readErr()
			}
			p.cur = p.get()
			*p.cur = (*p.cur)[:cap(*p.cur)]
		}
		m := copy((*p.cur)[p.n:], b)
		p.n += m
		written += m
		b = b[m:]
		if p.n == len(*p.cur) {
			if err := p.send(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// CloseWithError ends the writer side: the reader sees err after the data
// written so far, or io.EOF when err is nil.
func (p *chunkPipe) CloseWithError(err error) error {
	if err == nil && p.cur != nil && p.n > 0 {
		if serr := p.send(); serr != nil {
			err = serr
		}
	}
	p.mu.Lock()
	if p.werr == nil {
		p.werr = err
	}
	p.mu.Unlock()
	if p.cur != nil {
		p.put(p.cur)
		p.cur = nil
	}
	close(p.full)
	return nil
}

// Close is CloseWithError(nil).
func (p *chunkPipe) Close() error { return p.CloseWithError(nil) }

func (p *chunkPipe) writeErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.werr != nil {
		return p.werr
	}
	return io.EOF
}

// next takes the next filled buffer; false at the end.
func (p *chunkPipe) next() bool {
	b, ok := <-p.full
	if !ok {
		return false
	}
	p.rb, p.rlen, p.roff = b, len(*b), 0
	return true
}

func (p *chunkPipe) recycle() {
	p.put(p.rb)
	p.rb = nil
	p.free <- struct{}{}
}

// Read implements io.Reader (reader side).
func (p *chunkPipe) Read(b []byte) (int, error) {
	if p.rb == nil && !p.next() {
		return 0, p.writeErr()
	}
	n := copy(b, (*p.rb)[p.roff:p.rlen])
	p.roff += n
	if p.roff == p.rlen {
		p.recycle()
	}
	return n, nil
}

// WriteTo implements io.WriterTo (reader side).
func (p *chunkPipe) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if p.rb == nil && !p.next() {
			if err := p.writeErr(); err != io.EOF {
				return total, err
			}
			return total, nil
		}
		n, err := w.Write((*p.rb)[p.roff:p.rlen])
		total += int64(n)
		if err != nil {
			return total, err
		}
		if p.wrote != nil {
			p.wrote(n)
		}
		p.recycle()
	}
}

// stop ends the reader side: a writer blocked on a full queue returns err.
func (p *chunkPipe) stop(err error) {
	p.mu.Lock()
	if p.rerr == nil {
		p.rerr = err
		close(p.done)
	}
	p.mu.Unlock()
}
