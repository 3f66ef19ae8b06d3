package storage

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func testPipe() *chunkPipe {
	return newChunkPipe(func() *[]byte { b := make([]byte, 1000); return &b }, func(*[]byte) {})
}

func TestChunkPipe(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1000) // 16,000 bytes: 16 buffers
	for _, name := range []string{"Read", "WriteTo"} {
		p := testPipe()
		go func() {
			// Odd-sized writes across buffer boundaries.
			for i := 0; i < len(data); i += 777 {
				if _, err := p.Write(data[i:min(i+777, len(data))]); err != nil {
					p.CloseWithError(err)
					return
				}
			}
			p.Close()
		}()
		var got bytes.Buffer
		var err error
		if name == "Read" {
			_, err = io.Copy(&got, iotest.OneByteReader(p))
		} else {
			_, err = p.WriteTo(&got)
		}
		if err != nil || !bytes.Equal(got.Bytes(), data) {
			t.Fatalf("%s: %d bytes, %v", name, got.Len(), err)
		}
	}
}

func TestChunkPipeErrors(t *testing.T) {
	// The writer's error reaches the reader after the data.
	p := testPipe()
	boom := errors.New("boom")
	go func() {
		p.Write([]byte("partial"))
		p.CloseWithError(boom)
	}()
	if b, err := io.ReadAll(p); !errors.Is(err, boom) || string(b) != "" && string(b) != "partial" {
		t.Fatalf("ReadAll = %q, %v", b, err)
	}
	// A reader that stops unblocks a writer waiting on a full queue.
	p = testPipe()
	done := make(chan error)
	go func() {
		_, err := p.Write(make([]byte, 100_000))
		done <- err
	}()
	p.stop(boom)
	if err := <-done; !errors.Is(err, boom) {
		t.Fatalf("Write after stop = %v", err)
	}
}
