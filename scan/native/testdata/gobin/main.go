// Command gobin is built by the native scanner's tests so that an image
// holds a real Go binary with build information (Go version and one
// module dependency).
package main

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"
)

func main() {
	g, _ := errgroup.WithContext(context.Background())
	g.Go(func() error { return nil })
	fmt.Println(g.Wait())
}
