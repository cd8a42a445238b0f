package memstore_test

import (
	"testing"

	"github.com/credsync/credsync/core"
	_ "github.com/credsync/credsync/internal/golden" // registers -update
	"github.com/credsync/credsync/store/memstore"
	"github.com/credsync/credsync/store/storetest"
)

// TestConformance holds the reference implementation to the core.Store contract.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) core.Store { return memstore.New() })
}
