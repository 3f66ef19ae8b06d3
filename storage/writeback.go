package storage

import "os"

// writebackChunk is how many bytes of a local file are written before the
// kernel is asked to start writing them to disk.
const writebackChunk = 2 << 20

// Objects of at least dropMinSize bytes in a local directory do not stay in
// the operating system's page cache (unless Options.CacheContent is set):
// their pages are dropped once on disk, dropLag bytes behind the write, and
// behind every read of dropMinSize bytes or more, dropLag at a time.
// Smaller objects (manifests, configs, small layers: the hot set) stay.
const (
	dropMinSize = 4 << 20
	dropLag     = 8 << 20
)

// writeback starts the disk writes of a local file while it is being
// written, so that the fsync that makes it durable (Options.Sync) finds
// little left to do: the disk works while the content is still arriving
// instead of after it. Without it a 256 MiB object waits ~100 ms for its
// fsync and every 8 MiB chunk of a chunked upload ~10 ms. It is a hint:
// durability still comes from Options.Sync alone.
//
// With drop set it also drops the written pages from the page cache once
// they are on disk, dropLag bytes behind the write. A registry streams
// large write-once layers: kept cached, they would evict more useful pages,
// and every byte written would need a free page, which on virtual machines
// whose free memory the host reclaims costs more than the disk write
// itself. Recycled pages are already mapped, so the write runs at disk
// speed.
type writeback struct {
	f       *os.File // nil: not a local file, nothing to do
	drop    bool
	started int64 // bytes whose writeback was started
	pending int64 // bytes written since
	dropped int64 // bytes written back and dropped from the cache
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
	if wb.pending < writebackChunk {
		return
	}
	startWriteback(wb.f, wb.started, wb.pending)
	wb.started += wb.pending
	wb.pending = 0
	if wb.drop && wb.started-wb.dropped >= 2*dropLag {
		end := wb.started - dropLag
		waitWriteback(wb.f, wb.dropped, end-wb.dropped)
		dropCache(wb.f, wb.dropped, end-wb.dropped)
		wb.dropped = end
	}
}
