package memmeta_test

import (
	"testing"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/memmeta"
	"github.com/berth-dev/berth/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.RunMetadataTests(t, func(t *testing.T) driver.Metadata { return memmeta.New() })
}
