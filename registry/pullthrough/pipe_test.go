package pullthrough

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
	"time"
)

func TestRingPipe(t *testing.T) {
	data := make([]byte, 1<<20+17)
	for i := range data {
		data[i] = byte(rand.IntN(256))
	}
	for _, size := range []int{1, 7, 4096, 1 << 20} {
		p := newRingPipe(size)
		go func() {
			rest := data
			for len(rest) > 0 {
				n := min(len(rest), 1+rand.IntN(10000))
				if _, err := p.Write(rest[:n]); err != nil {
					p.closeWrite(err)
					return
				}
				rest = rest[n:]
			}
			p.closeWrite(nil)
		}()
		got, err := io.ReadAll(iotest.HalfReader(p))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("size %d: %d bytes, %v", size, len(got), err)
		}
	}
	if err := iotest.TestReader(func() io.Reader {
		p := newRingPipe(100)
		go func() { _, _ = p.Write(data[:1000]); p.closeWrite(nil) }()
		return p
	}(), data[:1000]); err != nil {
		t.Fatal(err)
	}
}

func TestRingPipeClose(t *testing.T) {
	boom := errors.New("boom")
	// The writer's error reaches the reader after the buffered bytes.
	p := newRingPipe(16)
	_, _ = p.Write([]byte("abc"))
	p.closeWrite(boom)
	got, err := io.ReadAll(p)
	if string(got) != "abc" || !errors.Is(err, boom) {
		t.Fatalf("%q %v", got, err)
	}
	// A reader that leaves unblocks a writer waiting for room.
	p = newRingPipe(4)
	done := make(chan error)
	go func() { _, err := p.Write(make([]byte, 100)); done <- err }()
	time.Sleep(10 * time.Millisecond)
	p.closeRead(errClientGone)
	select {
	case err := <-done:
		if !errors.Is(err, errClientGone) {
			t.Fatalf("write after the reader left: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("writer still blocked after the reader left")
	}
	if _, err := p.Write([]byte("x")); !errors.Is(err, errClientGone) {
		t.Fatal(err)
	}
}
