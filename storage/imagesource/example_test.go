package imagesource_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/imagesource"
	"github.com/berth-dev/berth/storage/memmeta"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// A Source opens the images of a store for scanning, without HTTP; a
// manifest the repository does not hold is not found.
func ExampleSource() {
	ctx := context.Background()
	store, err := storage.Open(ctx, "mem://", memmeta.New(), &storage.Options{DisableEncryption: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	src, err := imagesource.New(store)
	if err != nil {
		fmt.Println(err)
		return
	}
	d, _ := v1.NewHash("sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	_, _, err = src.Open(ctx, "team/app", d)
	fmt.Println(errors.Is(err, storage.ErrNotFound))
	// Output: true
}
