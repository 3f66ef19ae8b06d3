package storagetest

import "testing"

// runRegistryTests runs the subtests of the optional registry-state
// interfaces.
func runRegistryTests(t *testing.T, open NewMetadata) {}
