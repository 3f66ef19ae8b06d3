package token_test

import (
	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/memmeta"
)

func newTokenStore() driver.Tokens { return memmeta.New() }
