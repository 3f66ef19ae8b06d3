package events

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	"gocloud.dev/pubsub"
)

// TopicAccessWriter sends each access record as one message to a
// gocloud.dev/pubsub topic; the metadata carries "seq". Brokers may
// deliver messages out of order: a consumer orders records by seq before
// verifying or storing them.
type TopicAccessWriter struct {
	t *pubsub.Topic
}

// NewTopicAccessWriter returns a writer to t; the caller keeps ownership
// of t.
func NewTopicAccessWriter(t *pubsub.Topic) *TopicAccessWriter { return &TopicAccessWriter{t: t} }

// WriteAccessRecord implements AccessWriter.
func (w *TopicAccessWriter) WriteAccessRecord(ctx context.Context, seq int64, line []byte) error {
	// Drivers may keep the body after Send returns (mempubsub does).
	return w.t.Send(ctx, &pubsub.Message{Body: slices.Clone(line), Metadata: map[string]string{
		"content-type": "application/json", "seq": fmt.Sprint(seq)}})
}

// BucketAccessWriter writes each access record as its own object,
// PREFIX + 20-digit zero-padded sequence number + ".json", so that names
// sort in sequence order. Objects are created with IfNotExist: a record
// is never overwritten where the driver supports conditional writes
// (memblob, fileblob, s3blob, gcsblob, azureblob); with a bucket that has
// object lock or a retention policy, the copy is write-once.
type BucketAccessWriter struct {
	b      *blob.Bucket
	prefix string
}

// NewBucketAccessWriter returns a writer to b under prefix (for example
// "access/"); the caller keeps ownership of b.
//
// Records are written one at a time, inside the request (see AccessLog),
// so an object store's latency bounds the request rate: tens of
// milliseconds per write allow only tens of requests per second. Under
// load, send records to a topic (TopicAccessWriter) and have a consumer
// write them to the bucket with a BucketAccessWriter.
func NewBucketAccessWriter(b *blob.Bucket, prefix string) *BucketAccessWriter {
	return &BucketAccessWriter{b: b, prefix: prefix}
}

// Key returns the object key of record seq.
func (w *BucketAccessWriter) Key(seq int64) string { return fmt.Sprintf("%s%020d.json", w.prefix, seq) }

// WriteAccessRecord implements AccessWriter. Writing a seq that is already
// stored with the same content succeeds (a retried write that had in fact
// succeeded); with other content it fails.
func (w *BucketAccessWriter) WriteAccessRecord(ctx context.Context, seq int64, line []byte) error {
	key := w.Key(seq)
	err := w.b.WriteAll(ctx, key, line, &blob.WriterOptions{ContentType: "application/json", IfNotExist: true})
	if err == nil {
		return nil
	}
	if gcerrors.Code(err) == gcerrors.FailedPrecondition {
		old, rerr := w.b.ReadAll(ctx, key)
		if rerr == nil && string(old) == string(line) {
			return nil
		}
		return fmt.Errorf("events: access record %d already exists with other content: %w", seq, errRecordExists)
	}
	return err
}

var errRecordExists = errors.New("record exists")
