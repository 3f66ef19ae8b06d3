// Package envelope implements Berth's at-rest encryption format for blobs:
// envelope encryption with a fresh data key per blob, and content encrypted
// in independently authenticated segments so that a range read fetches and
// decrypts only the segments it needs.
//
// A blob is written with [NewDataKey], [NewWriter] and [WrapKey]; the wrapped
// key and the plaintext size are stored next to the ciphertext object (in
// Berth, in the metadata database) together with [Scheme]. It is read back
// with [UnwrapKey] and [NewRangeReader]. [Rewrap] rotates the key-encryption
// key without touching the content.
//
// # Format
//
// The format is Tink's AES-GCM-HKDF streaming AEAD
// (https://developers.google.com/tink/streaming-aead/aes_gcm_hkdf_streaming)
// with HKDF-SHA256, AES-256 and 64 KiB ciphertext segments. It is recorded
// as [Scheme] "AES256_GCM_HKDF_64KB". Tink's implementations read and write
// it; in Go, streamingaead/subtle.NewAESGCMHKDF(dataKey, "SHA256", 32, 65536, 0).
//
// A ciphertext object for an n-byte plaintext is a header followed by N
// segments:
//
//	object  = header || segment_0 || segment_1 || … || segment_(N-1)
//
//	header (HeaderSize = 40 bytes):
//	  offset  0, 1 byte:   header length, always 0x28 (40)
//	  offset  1, 32 bytes: salt, random for each object
//	  offset 33, 7 bytes:  nonce prefix, random for each object
//
//	segment_i = AES-256-GCM-Seal(K, nonce_i, P_i, no additional data)
//	          = ciphertext of P_i (len(P_i) bytes) || tag (16 bytes)
//
//	K       = HKDF-SHA256(IKM = data key, salt = header salt,
//	                      info = associated data, length = 32)
//	nonce_i = nonce prefix (7 bytes)
//	          || i as a big-endian uint32 (4 bytes)
//	          || 0x01 if i = N-1, the final segment, else 0x00 (1 byte)
//
// The plaintext is cut into P_0 of 65480 bytes (SegmentSize − TagSize −
// HeaderSize, so that header and first segment fill exactly SegmentSize
// bytes), then P_1, P_2, … of 65520 bytes (SegmentSize − TagSize) each. The
// final segment holds what is left: 1 to its full size, and is empty only
// when the whole plaintext is empty, in which case N = 1. Hence:
//
//	N                   = 1                              if n ≤ 65480
//	                      1 + ⌈(n − 65480) / 65520⌉      otherwise
//	object size         = 40 + n + 16·N                  (CiphertextSize)
//	segment i starts at   40 for i = 0, i·65536 otherwise
//	plaintext offset p is in segment 0 if p < 65480,
//	                      else 1 + ⌊(p − 65480) / 65520⌋
//
// The package's testdata/known-answer directory holds vectors for this
// layout and a short decrypter written from this description alone.
//
// At most 2³² − 1 segments are allowed, bounding the plaintext at
// [MaxPlaintextSize] (about 256 TiB). The data key itself is wrapped by the
// [secrets.Keeper] in whatever format the keeper uses; this package never
// stores it.
//
// # Errors
//
// Every error that means "these bytes are not what was written" — a GCM
// authentication failure, a truncated or extended object, a bad header
// length byte, a wrapped key of the wrong length — matches [ErrCorrupt] with
// [errors.Is], and those from reading are a [*CorruptError] giving the
// failing segment. Using the wrong data key or the wrong associated data is
// indistinguishable from corruption and reported the same way. Errors from
// the [secrets.Keeper] and from the [RangeOpener] are wrapped with %w, so
// gcerrors.Code and errors.Is on them still work. Invalid arguments (a range
// outside the plaintext, a destroyed key, a nil keeper) are plain errors.
// Messages are prefixed "envelope: " and never contain key material.
//
// # Security
//
// Confidentiality and integrity rest on AES-256-GCM under a segment key that
// is unique to each object: K depends on a random 32-byte salt, so even a
// reused data key never repeats a (key, nonce) pair. Each segment's nonce
// carries its index, so segments cannot be reordered, dropped or spliced in
// from another object, and the associated data (the object key, in Berth)
// binds the object to its name: an object and its wrapped key copied under
// another name fail to decrypt.
//
// Truncation at a segment boundary is defeated by the last-segment flag
// together with the plaintext size: the reader derives the index of the final
// segment from the plainSize it is given and decrypts exactly that segment,
// of exactly the expected length, with the flag set, and checks that the
// object ends right after it. A read that reaches the end of an object cut
// after any earlier segment, or extended with any bytes, therefore fails; a
// range that stops before the final segment does not look at the end, and
// the bytes it returns are authentic all the same. plainSize must come from
// trusted metadata: a wrong value makes every read that covers the segment it
// names as final fail authentication (a GCM tag covers the exact segment
// length, and only the true final segment carries the flag), so it can deny
// service but never yield wrong bytes.
//
// [NewRangeReader] authenticates each segment before returning any of its
// bytes, so no unauthenticated plaintext is ever released; a read that fails
// part way has returned only correct bytes. A range read verifies only the
// segments it covers: damage elsewhere in the object is found by the read
// that covers it. The format does not hide the plaintext length (it follows
// from the object size) nor which ranges are read.
//
// [DataKey] keeps its bytes out of fmt, slog and encoding/json, and
// [DataKey.Destroy] overwrites them. That is best effort: the Go runtime
// does not let the expanded AES key schedule held by an open writer or
// reader be wiped, so close them promptly and destroy keys as soon as
// possible. Key-encryption keys never reach this package; they stay inside
// the [secrets.Keeper] (a KMS, or localsecrets for development).
//
// # Concurrency
//
// WrapKey, UnwrapKey, Rewrap, CiphertextSize and PlaintextSize are safe for
// concurrent use. A DataKey may be used by any number of concurrent writers
// and readers, but must not be destroyed while one is being created. Each
// writer returned by NewWriter and each reader returned by NewRangeReader is
// for use by one goroutine at a time; distinct ones are independent.
// NewRangeReader may call its [RangeOpener] from two goroutines at once.
package envelope
