package memmeta_test

import (
	"context"
	"errors"
	"testing"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/memmeta"
	"github.com/berth-dev/berth/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.RunMetadataTests(t, func(t *testing.T) driver.Metadata { return memmeta.New() })
}

func TestURLOpener(t *testing.T) {
	m, err := driver.DefaultMetadataURLMux().OpenMetadata(context.Background(), "mem://")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.(*memmeta.Metadata); !ok {
		t.Errorf("mem:// opened %T", m)
	}
	for _, bad := range []string{"mem://host", "mem:///path", "mem://?x=1"} {
		if _, err := driver.DefaultMetadataURLMux().OpenMetadata(context.Background(), bad); !errors.Is(err, driver.ErrInvalidArgument) {
			t.Errorf("OpenMetadata(%q) = %v, want ErrInvalidArgument", bad, err)
		}
	}
}
