package snapstore_test

import (
	"context"
	"slices"
	"testing"

	"github.com/snapdeck/snapdeck/internal/snapstore"
)

// listOnly hides Local's ListPrefix, so ListPrefix filters List.
type listOnly struct{ snapstore.Blobs }

func TestListPrefix(t *testing.T) {
	ctx := context.Background()
	local, err := snapstore.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"packs/p1", "pitr/a1/l0/1.ltx", "pitr/a1/l9/2.ltx", "pitr/a12/l0/3.ltx", "pitr/b2/l0/4.ltx"} {
		if err := local.Put(ctx, key, []byte(key)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"pitr/a1/", []string{"pitr/a1/l0/1.ltx", "pitr/a1/l9/2.ltx"}},
		{"pitr/a1/l0/", []string{"pitr/a1/l0/1.ltx"}},
		{"pitr/a1", []string{"pitr/a1/l0/1.ltx", "pitr/a1/l9/2.ltx", "pitr/a12/l0/3.ltx"}},
		{"pitr/c3/", nil},
		{"", []string{"packs/p1", "pitr/a1/l0/1.ltx", "pitr/a1/l9/2.ltx", "pitr/a12/l0/3.ltx", "pitr/b2/l0/4.ltx"}},
	} {
		for _, b := range []snapstore.Blobs{local, listOnly{local}} {
			var got []string
			if err := snapstore.ListPrefix(ctx, b, tc.prefix, func(key string) error {
				got = append(got, key)
				return nil
			}); err != nil {
				t.Fatalf("%q: %v", tc.prefix, err)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("ListPrefix %q (%T): got %v, want %v", tc.prefix, b, got, tc.want)
			}
		}
	}
}
