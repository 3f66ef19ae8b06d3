package driver_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/berth-dev/berth/storage/driver"
)

type fakeOpener struct{ got *url.URL }

func (f *fakeOpener) OpenMetadataURL(ctx context.Context, u *url.URL) (driver.Metadata, error) {
	f.got = u
	return nil, nil
}

func TestMetadataURLMux(t *testing.T) {
	var mux driver.MetadataURLMux
	f := &fakeOpener{}
	mux.RegisterMetadata("fake", f)
	if _, err := mux.OpenMetadata(context.Background(), "fake://host/path?x=1"); err != nil {
		t.Fatal(err)
	}
	if f.got == nil || f.got.Host != "host" || f.got.Query().Get("x") != "1" {
		t.Errorf("opener got %v", f.got)
	}
	_, err := mux.OpenMetadata(context.Background(), "other://u:hunter2@h/db")
	if !errors.Is(err, driver.ErrInvalidArgument) || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "fake") {
		t.Errorf("unknown scheme: %v", err)
	}
	_, err = mux.OpenMetadata(context.Background(), "fake://u:hunter2@[::1")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("malformed URL: %v", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("registering a scheme twice did not panic")
			}
		}()
		mux.RegisterMetadata("fake", f)
	}()
	if got := mux.MetadataSchemes(); len(got) != 1 || got[0] != "fake" {
		t.Errorf("MetadataSchemes = %v", got)
	}
}
