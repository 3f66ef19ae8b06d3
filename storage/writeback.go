package storage

import "os"

// writebackChunk is how many bytes of a local file are written before the
// kernel is asked to start writing them to disk.
const writebackChunk = 2 << 20

// writeback starts the disk writes of a local file while it is being
// written, so that the fsync that makes it durable (Options.Sync) finds
// little left to do: the disk works while the content is still arriving
// instead of after it. Without it a 256 MiB object waits ~100 ms for its
// fsync and every 8 MiB chunk of a chunked upload ~10 ms. It is a hint:
// durability still comes from Options.Sync alone.
type writeback struct {
	f       *os.File // nil: not a local file, nothing to do
	started int64    // bytes whose writeback was started
	pending int64    // bytes written since
}

// beforeWrite is a blob.WriterOptions.BeforeWrite: file:// buckets expose
// the file being written.
func (wb *writeback) beforeWrite(as func(any) bool) error {
	var f *os.File
	if as(&f) {
		wb.f = f
	}
	return nil
}

// wrote records n more bytes written to the file, in order.
func (wb *writeback) wrote(n int) {
	if wb.f == nil {
		return
	}
	wb.pending += int64(n)
	if wb.pending >= writebackChunk {
		startWriteback(wb.f, wb.started, wb.pending)
		wb.started += wb.pending
		wb.pending = 0
	}
}
