package envelope_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"

	"gocloud.dev/secrets/localsecrets"

	"github.com/berth-dev/berth/storage/envelope"
)

func Example() {
	ctx := context.Background()

	// The key-encryption key lives in a keeper: a KMS in production.
	kek, err := localsecrets.NewRandomKey()
	if err != nil {
		log.Fatal(err)
	}
	keeper := localsecrets.NewKeeper(kek)
	defer keeper.Close()

	// Writing: a fresh data key per blob, the object key as associated data.
	objectKey := []byte("blobs/sha256/2c/2cf24dba5fb0a30e")
	plaintext := []byte("hello, envelope encryption")

	dk, err := envelope.NewDataKey()
	if err != nil {
		log.Fatal(err)
	}
	var object bytes.Buffer // stands in for a bucket object
	w, err := envelope.NewWriter(&object, dk, objectKey)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := w.Write(plaintext); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	wrapped, err := envelope.WrapKey(ctx, keeper, dk)
	if err != nil {
		log.Fatal(err)
	}
	dk.Destroy()
	// Store wrapped, envelope.Scheme and len(plaintext) in the metadata.
	fmt.Println(object.Len() == int(envelope.CiphertextSize(int64(len(plaintext)))))

	// Reading bytes [7, 7+8) back.
	open := func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		b := object.Bytes()[off:]
		if n >= 0 {
			b = b[:n]
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	dk, err = envelope.UnwrapKey(ctx, keeper, wrapped)
	if err != nil {
		log.Fatal(err)
	}
	defer dk.Destroy()
	r, err := envelope.NewRangeReader(ctx, open, int64(len(plaintext)), dk, objectKey, 7, 8)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", got)
	fmt.Println(dk)
	// Output:
	// true
	// envelope
	// envelope.DataKey(REDACTED)
}

// Rotating the key-encryption key touches only the wrapped data keys, never
// the blob content.
func ExampleRewrap() {
	ctx := context.Background()
	oldKEK, _ := localsecrets.NewRandomKey()
	newKEK, _ := localsecrets.NewRandomKey()
	oldKeeper, newKeeper := localsecrets.NewKeeper(oldKEK), localsecrets.NewKeeper(newKEK)
	defer newKeeper.Close()

	dk, err := envelope.NewDataKey()
	if err != nil {
		log.Fatal(err)
	}
	wrapped, err := envelope.WrapKey(ctx, oldKeeper, dk)
	if err != nil {
		log.Fatal(err)
	}
	dk.Destroy()

	rewrapped, err := envelope.Rewrap(ctx, oldKeeper, newKeeper, wrapped)
	if err != nil {
		log.Fatal(err)
	}
	oldKeeper.Close() // no longer needed once every wrapped key is rewrapped

	dk, err = envelope.UnwrapKey(ctx, newKeeper, rewrapped)
	fmt.Println(err)
	dk.Destroy()
	// Output:
	// <nil>
}

func ExampleCiphertextSize() {
	for _, n := range []int64{0, 1, 65480, 65481, 1 << 20} {
		fmt.Println(n, envelope.CiphertextSize(n))
	}
	// Output:
	// 0 56
	// 1 57
	// 65480 65536
	// 65481 65553
	// 1048576 1048888
}
