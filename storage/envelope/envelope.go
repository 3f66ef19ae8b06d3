package envelope

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"

	"gocloud.dev/secrets"
)

// Scheme names the format this package writes and reads. The storage layer
// records it next to every blob so that a later format can be introduced
// without ambiguity: a reader must refuse a blob whose recorded scheme it
// does not know.
const Scheme = "AES256_GCM_HKDF_64KB"

// Format parameters. They are fixed by [Scheme]; see the package
// documentation for the byte layout.
const (
	// KeySize is the size in bytes of a [DataKey], of the HKDF salt and of
	// the derived AES-256 segment key.
	KeySize = 32

	// HeaderSize is the size in bytes of the header that starts every
	// ciphertext object: 1 length byte, a 32-byte salt and a 7-byte nonce
	// prefix.
	HeaderSize = 40

	// SegmentSize is the size in bytes of every ciphertext segment except the
	// last, which may be shorter. The first segment starts after the header,
	// so header plus first segment also take SegmentSize bytes.
	SegmentSize = 64 << 10

	// TagSize is the size in bytes of the GCM authentication tag that ends
	// every ciphertext segment.
	TagSize = 16

	// MaxPlaintextSize is the largest plaintext, in bytes, that fits the
	// format: 2³² − 1 segments, 65480 + (2³² − 2) × 65520 bytes, just under
	// 256 TiB. Writing more is an error.
	MaxPlaintextSize int64 = 281406257168360
)

// Compile-time checks that the literals above agree with the layout.
const (
	_ = uint(HeaderSize - (1 + KeySize + noncePrefixSize))
	_ = uint((1 + KeySize + noncePrefixSize) - HeaderSize)
	_ = uint(MaxPlaintextSize - (SegmentSize - TagSize - HeaderSize + (maxSegments-1)*(SegmentSize-TagSize)))
	_ = uint((SegmentSize - TagSize - HeaderSize + (maxSegments-1)*(SegmentSize-TagSize)) - MaxPlaintextSize)
)

const (
	noncePrefixSize = 7
	nonceSize       = noncePrefixSize + 4 + 1
	maxSegments     = 1<<32 - 1 // segment indexes 0 … 2³²−2, as in Tink
	hkdfHash        = "SHA256"  // Tink's name for the HKDF hash
)

// ErrCorrupt is matched (with [errors.Is]) by every error that reports
// ciphertext failing authentication, a truncated or extended ciphertext
// object, a malformed header, or a wrapped key that unwraps to the wrong
// length. A wrong data key or wrong associated data is indistinguishable from
// corruption and is reported the same way.
var ErrCorrupt = errors.New("envelope: ciphertext corrupt")

// CorruptError describes where a ciphertext object failed verification.
// It matches [ErrCorrupt] with [errors.Is].
type CorruptError struct {
	// Segment is the index of the segment that failed, or -1 for the header.
	Segment int64
	// Offset is the ciphertext offset of the start of that segment or header.
	Offset int64
	// Reason is a short lower-case description such as
	// "authentication failed", "truncated" or "trailing data".
	Reason string
}

// Error implements the error interface.
func (e *CorruptError) Error() string {
	if e.Segment < 0 {
		return fmt.Sprintf("envelope: ciphertext corrupt: header: %s", e.Reason)
	}
	return fmt.Sprintf("envelope: ciphertext corrupt: segment %d (offset %d): %s", e.Segment, e.Offset, e.Reason)
}

// Is reports whether target is [ErrCorrupt].
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

var errDestroyed = errors.New("envelope: data key is destroyed or uninitialised")

// DataKey is a per-blob data-encryption key: KeySize random bytes. Create one
// with [NewDataKey] or [UnwrapKey]; the zero DataKey is not usable. Call
// [DataKey.Destroy] when done with it.
//
// A DataKey never reveals its bytes through fmt, slog or encoding/json; the
// only way to get them out of the process is [WrapKey].
//
// Copies of a DataKey share the key: destroying one destroys all.
type DataKey struct {
	s *keyState
}

type keyState struct {
	b    [KeySize]byte
	live bool
}

// NewDataKey returns a new random data key read from crypto/rand.
func NewDataKey() (*DataKey, error) {
	k := &DataKey{s: &keyState{live: true}}
	if _, err := rand.Read(k.s.b[:]); err != nil {
		return nil, fmt.Errorf("envelope: new data key: %w", err)
	}
	return k, nil
}

// Destroy overwrites the key with zeros; any later use of k (or of a copy of
// it) returns an error. Destroy is idempotent and may be called on a nil key.
// Writers and readers derive their own segment keys when created and do not
// need k afterwards; those derived keys are not wiped (see Security in the
// package documentation).
func (k *DataKey) Destroy() {
	if k == nil || k.s == nil {
		return
	}
	clear(k.s.b[:])
	k.s.live = false
}

// String returns a fixed redacted text; it never reveals the key.
func (DataKey) String() string { return "envelope.DataKey(REDACTED)" }

// Format implements [fmt.Formatter] so that no verb (%x, %d, %#v …) prints
// the key bytes: all print the String text.
func (k DataKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// LogValue implements [slog.LogValuer] with the redacted text.
func (k DataKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

func (k *DataKey) usable() error {
	if k == nil || k.s == nil || !k.s.live {
		return errDestroyed
	}
	return nil
}

// WrapKey encrypts dk with the key-encryption key held by keeper and returns
// the wrapped key, to be stored next to the blob. The keeper's errors are
// wrapped with %w, so gcerrors.Code and keeper.ErrorAs still apply.
func WrapKey(ctx context.Context, keeper *secrets.Keeper, dk *DataKey) ([]byte, error) {
	if keeper == nil {
		return nil, errors.New("envelope: wrap data key: nil keeper")
	}
	if err := dk.usable(); err != nil {
		return nil, err
	}
	w, err := keeper.Encrypt(ctx, dk.s.b[:])
	if err != nil {
		return nil, fmt.Errorf("envelope: wrap data key: %w", err)
	}
	return w, nil
}

// UnwrapKey decrypts a key wrapped by [WrapKey] with the same key-encryption
// key. The keeper's errors are wrapped with %w. A wrapped key that decrypts
// to anything but KeySize bytes is reported as [ErrCorrupt].
func UnwrapKey(ctx context.Context, keeper *secrets.Keeper, wrapped []byte) (*DataKey, error) {
	if keeper == nil {
		return nil, errors.New("envelope: unwrap data key: nil keeper")
	}
	b, err := keeper.Decrypt(ctx, wrapped)
	if err != nil {
		return nil, fmt.Errorf("envelope: unwrap data key: %w", err)
	}
	defer clear(b)
	if len(b) != KeySize {
		return nil, fmt.Errorf("envelope: unwrap data key: unwrapped %d bytes, want %d: %w", len(b), KeySize, ErrCorrupt)
	}
	k := &DataKey{s: &keyState{live: true}}
	copy(k.s.b[:], b)
	return k, nil
}

// Rewrap unwraps wrapped with from and wraps the same data key with to,
// for rotating key-encryption keys without reading or rewriting any blob
// content. The plaintext data key is destroyed before Rewrap returns.
func Rewrap(ctx context.Context, from, to *secrets.Keeper, wrapped []byte) ([]byte, error) {
	if to == nil {
		return nil, errors.New("envelope: rewrap: nil keeper")
	}
	dk, err := UnwrapKey(ctx, from, wrapped)
	if err != nil {
		return nil, err
	}
	defer dk.Destroy()
	return WrapKey(ctx, to, dk)
}

// CiphertextSize returns the size in bytes of the stored object for a
// plaintext of n bytes: HeaderSize + n + TagSize × number of segments.
// n must be in [0, MaxPlaintextSize]; CiphertextSize panics otherwise.
func CiphertextSize(n int64) int64 {
	if n < 0 || n > MaxPlaintextSize {
		panic("envelope: CiphertextSize: size out of range")
	}
	return std.ciphertextSize(n)
}

// PlaintextSize is the inverse of [CiphertextSize]. It reports an error
// matching [ErrCorrupt] if no plaintext size encrypts to exactly c bytes.
func PlaintextSize(c int64) (int64, error) { return std.plaintextSize(c) }

// format holds the one free parameter of the layout, the ciphertext segment
// size. Production code always uses std; tests use tiny segments to reach
// every boundary case quickly.
type format struct {
	seg int64 // ciphertext segment size
}

var std = format{seg: SegmentSize}

// ptSeg is the plaintext size of a full segment other than the first.
func (f format) ptSeg() int64 { return f.seg - TagSize }

// firstPt is the plaintext size of a full first segment.
func (f format) firstPt() int64 { return f.seg - TagSize - HeaderSize }

func (f format) maxPlain() int64 { return f.firstPt() + (maxSegments-1)*f.ptSeg() }

// numSegments returns the number of segments for n plaintext bytes. The
// last segment is empty only when n == 0.
func (f format) numSegments(n int64) int64 {
	if n <= f.firstPt() {
		return 1
	}
	return 1 + (n-f.firstPt()+f.ptSeg()-1)/f.ptSeg()
}

// segmentOf returns the index of the segment holding plaintext offset p.
func (f format) segmentOf(p int64) int64 {
	if p < f.firstPt() {
		return 0
	}
	return 1 + (p-f.firstPt())/f.ptSeg()
}

// plainStart returns the plaintext offset where segment i starts.
func (f format) plainStart(i int64) int64 {
	if i == 0 {
		return 0
	}
	return f.firstPt() + (i-1)*f.ptSeg()
}

// cipherStart returns the ciphertext offset where segment i starts.
func (f format) cipherStart(i int64) int64 {
	if i == 0 {
		return HeaderSize
	}
	return i * f.seg
}

// plainLen returns the plaintext length of segment i of an n-byte plaintext.
func (f format) plainLen(i, n int64) int64 {
	return min(f.plainStart(i+1), n) - f.plainStart(i)
}

func (f format) ciphertextSize(n int64) int64 {
	return HeaderSize + n + TagSize*f.numSegments(n)
}

func (f format) plaintextSize(c int64) (int64, error) {
	bad := &CorruptError{Segment: -1, Reason: fmt.Sprintf("no plaintext size encrypts to %d bytes", c)}
	if c < HeaderSize+TagSize || c > f.ciphertextSize(f.maxPlain()) {
		return 0, bad
	}
	// Every segment but the last is full, and the last holds 1 to seg bytes
	// (TagSize only when the plaintext is empty).
	body := c - HeaderSize
	segs := (body + HeaderSize + f.seg - 1) / f.seg
	n := body - segs*TagSize
	if n < 0 || f.ciphertextSize(n) != c {
		return 0, bad
	}
	return n, nil
}

// newAEAD derives the segment key from dk, the header salt and ad exactly as
// Tink's AesGcmHkdfStreaming does, and returns AES-256-GCM with it.
func newAEAD(dk *DataKey, salt, ad []byte) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, dk.s.b[:], salt, string(ad), KeySize)
	if err != nil {
		return nil, fmt.Errorf("envelope: derive segment key: %w", err)
	}
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	return aead, nil
}

// putNonce writes the per-segment part of the nonce: the big-endian segment
// index and the last-segment flag. The prefix is already in place.
func putNonce(nonce *[nonceSize]byte, i int64, last bool) {
	nonce[7] = byte(i >> 24)
	nonce[8] = byte(i >> 16)
	nonce[9] = byte(i >> 8)
	nonce[10] = byte(i)
	nonce[11] = 0
	if last {
		nonce[11] = 1
	}
}
