package storage

import (
	"fmt"

	"github.com/berth-dev/berth/internal/errcode"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrNotFound reports a blob or upload session that does not exist.
	ErrNotFound = driver.ErrNotFound
	// ErrConflict reports a conditional update that lost a race, for
	// example two clients appending to one upload session at once.
	ErrConflict = driver.ErrConflict
	// ErrCorrupt reports stored content that failed authentication or an
	// integrity check: a flipped, truncated or swapped ciphertext. The store
	// never returns unauthenticated bytes.
	ErrCorrupt error = &errcode.Error{Code: errcode.DataLoss, Msg: "storage: stored content failed its integrity check"}
	// ErrClosed reports use of a closed store.
	ErrClosed error = &errcode.Error{Code: errcode.FailedPrecondition, Msg: "storage: store is closed"}
)

// DigestMismatchError reports content whose digest is not the one the
// client declared. Nothing of it was stored.
type DigestMismatchError struct {
	Want, Got digest.Digest
	// Size is the number of bytes received.
	Size int64
}

func (e *DigestMismatchError) Error() string {
	return fmt.Sprintf("storage: digest mismatch: declared %s, content of %d bytes is %s", e.Want, e.Size, e.Got)
}

// ErrorCode implements errcode.Coder: InvalidArgument.
func (e *DigestMismatchError) ErrorCode() errcode.Code { return errcode.InvalidArgument }

// SizeMismatchError reports content whose length is not the one declared
// (a short or long body). Nothing of it was stored.
type SizeMismatchError struct {
	// Want is the declared size; Got the number of bytes received, which is
	// Want+1 when the body was longer than declared (reading stops there).
	Want, Got int64
}

func (e *SizeMismatchError) Error() string {
	if e.Got > e.Want {
		return fmt.Sprintf("storage: size mismatch: declared %d bytes, body is longer", e.Want)
	}
	return fmt.Sprintf("storage: size mismatch: declared %d bytes, received %d", e.Want, e.Got)
}

// ErrorCode implements errcode.Coder: InvalidArgument.
func (e *SizeMismatchError) ErrorCode() errcode.Code { return errcode.InvalidArgument }

// TooLargeError reports content longer than the store's configured limit.
type TooLargeError struct{ Limit int64 }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("storage: content exceeds the limit of %d bytes", e.Limit)
}

// ErrorCode implements errcode.Coder: ResourceExhausted.
func (e *TooLargeError) ErrorCode() errcode.Code { return errcode.ResourceExhausted }

// RangeError reports a byte range that does not lie within a blob.
type RangeError struct {
	Offset, Length, Size int64
}

func (e *RangeError) Error() string {
	return fmt.Sprintf("storage: range offset %d length %d is not satisfiable for a blob of %d bytes", e.Offset, e.Length, e.Size)
}

// ErrorCode implements errcode.Coder: InvalidArgument.
func (e *RangeError) ErrorCode() errcode.Code { return errcode.InvalidArgument }

// OffsetError reports a chunk that does not start where the upload session
// ends: chunks must be sent in order without gaps or overlaps.
type OffsetError struct {
	// Want is the session's current size, where the next chunk must start.
	Want int64
	// Got is the offset the chunk claimed.
	Got int64
}

func (e *OffsetError) Error() string {
	return fmt.Sprintf("storage: chunk starts at offset %d but the upload has %d bytes", e.Got, e.Want)
}

// ErrorCode implements errcode.Coder: FailedPrecondition.
func (e *OffsetError) ErrorCode() errcode.Code { return errcode.FailedPrecondition }

// wrap adds the operation and key to a backend error once.
func wrap(op string, subject string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("storage: %s %s: %w", op, subject, err)
}
