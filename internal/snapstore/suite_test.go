package snapstore_test

import (
	"testing"

	"github.com/snapdeck/snapdeck/internal/snapstore"
	"github.com/snapdeck/snapdeck/internal/snapstore/snapstoretest"
)

// TestLocalSuite runs the suite every Blobs passes on local disk.
func TestLocalSuite(t *testing.T) {
	snapstoretest.Run(t, func(t *testing.T) func() snapstore.Blobs {
		dir := t.TempDir()
		return func() snapstore.Blobs {
			b, err := snapstore.NewLocal(dir)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	})
}
