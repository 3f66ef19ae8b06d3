package envelope

import (
	"fmt"
	"io"

	"github.com/tink-crypto/tink-go/v2/streamingaead/subtle"
)

// NewWriter returns a writer that encrypts everything written to it with dk
// and writes the ciphertext object — header, then segments — to w. ad is
// associated data bound to the ciphertext: reading it back requires the same
// ad (the storage layer passes the object key). ad may be nil.
//
// The header is written to w before NewWriter returns. Close encrypts and
// writes the last segment; it does not close w. A blob is complete only once
// Close has returned nil; after an error from Write or Close the ciphertext
// written so far is unusable and must be discarded.
//
// The returned writer holds one segment of buffered plaintext. It is not safe
// for concurrent use. dk may be destroyed once NewWriter returns.
func NewWriter(w io.Writer, dk *DataKey, ad []byte) (io.WriteCloser, error) {
	return newWriter(std, w, dk, ad)
}

func newWriter(f format, w io.Writer, dk *DataKey, ad []byte) (io.WriteCloser, error) {
	if err := dk.usable(); err != nil {
		return nil, err
	}
	a, err := subtle.NewAESGCMHKDF(dk.s.b[:], hkdfHash, KeySize, int(f.seg), 0)
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	ew, err := a.NewEncryptingWriter(w, ad)
	if err != nil {
		return nil, fmt.Errorf("envelope: write header: %w", err)
	}
	return ew, nil
}
