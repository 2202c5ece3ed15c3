package s3blobs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapstore"
	"github.com/snapdeck/snapdeck/internal/snapstore/s3blobs"
	"github.com/snapdeck/snapdeck/internal/snapstore/s3blobs/s3test"
	"github.com/snapdeck/snapdeck/internal/snapstore/snapstoretest"
)

// remote returns an S3 on weed's bucket under prefix.
func remote(t *testing.T, weed *s3test.Server, prefix string) *s3blobs.S3 {
	t.Helper()
	s, err := s3blobs.New(s3blobs.Config{Bucket: weed.Bucket, Prefix: prefix, Endpoint: weed.Endpoint,
		AccessKeyID: weed.AccessKeyID, SecretAccessKey: weed.SecretAccessKey})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// prefixOf names a prefix after a (sub)test.
func prefixOf(t *testing.T) string {
	return strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
}

// TestSuiteOnSeaweedFS runs the suite every Blobs passes against a real
// SeaweedFS server, on S3 itself and through the cache.
func TestSuiteOnSeaweedFS(t *testing.T) {
	weed := s3test.Start(t)
	t.Run("S3", func(t *testing.T) {
		snapstoretest.Run(t, func(t *testing.T) func() snapstore.Blobs {
			s := remote(t, weed, prefixOf(t))
			return func() snapstore.Blobs { return s }
		})
	})
	t.Run("Cache", func(t *testing.T) {
		snapstoretest.Run(t, func(t *testing.T) func() snapstore.Blobs {
			s, dir := remote(t, weed, prefixOf(t)), t.TempDir()
			return func() snapstore.Blobs {
				c, err := s3blobs.NewCache(s, dir, 64<<20, nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(c.Close)
				return c
			}
		})
	})
	t.Run("SmallCache", func(t *testing.T) {
		// A cache smaller than one pack keeps almost nothing: every read
		// goes to the server, and must still be right.
		snapstoretest.Run(t, func(t *testing.T) func() snapstore.Blobs {
			s, dir := remote(t, weed, prefixOf(t)), t.TempDir()
			return func() snapstore.Blobs {
				c, err := s3blobs.NewCache(s, dir, 1<<20, nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(c.Close)
				return c
			}
		})
	})
}

// TestCheckSaysWhatIsWrong: wrong credentials, a missing bucket and an
// unreachable endpoint are each an error naming the cause.
func TestCheckSaysWhatIsWrong(t *testing.T) {
	weed := s3test.Start(t)
	ctx := context.Background()
	if err := remote(t, weed, "ok").Check(ctx); err != nil {
		t.Fatalf("Check of a good store: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		name string
		cfg  s3blobs.Config
		want string
	}{
		{"wrong secret", s3blobs.Config{Bucket: weed.Bucket, Endpoint: weed.Endpoint, AccessKeyID: weed.AccessKeyID, SecretAccessKey: "wrong"}, "signature"},
		{"unknown key", s3blobs.Config{Bucket: weed.Bucket, Endpoint: weed.Endpoint, AccessKeyID: "nobody", SecretAccessKey: "wrong"}, "access key"},
		{"missing bucket", s3blobs.Config{Bucket: "no-such-bucket", Endpoint: weed.Endpoint, AccessKeyID: weed.AccessKeyID, SecretAccessKey: weed.SecretAccessKey}, `bucket "no-such-bucket" does not exist`},
		{"unreachable", s3blobs.Config{Bucket: weed.Bucket, Endpoint: closed, AccessKeyID: weed.AccessKeyID, SecretAccessKey: weed.SecretAccessKey}, "connection refused"},
	} {
		s, err := s3blobs.New(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		err = s.Check(ctx)
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.want)) {
			t.Errorf("%s: Check: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}

// TestLeaseHasOneOwner: a second node is refused while the first holds
// the prefix, and told who holds it; the same node takes its lease back
// after a crash; a stale lease is taken over; a released one is free; and
// another prefix in the same bucket is free all along.
func TestLeaseHasOneOwner(t *testing.T) {
	weed := s3test.Start(t)
	ctx := context.Background()
	s := remote(t, weed, "shared")
	a, err := s3blobs.AcquireLease(ctx, s, s3blobs.Holder{Node: "node-a", Host: "host-a", PID: 11}, 0, nil)
	if err != nil {
		t.Fatalf("first node: %v", err)
	}
	_, err = s3blobs.AcquireLease(ctx, s, s3blobs.Holder{Node: "node-b", Host: "host-b", PID: 22}, 0, nil)
	if snapdeck.ErrorCode(err) != snapdeck.Conflict || !strings.Contains(err.Error(), "node node-a (host host-a, pid 11)") {
		t.Fatalf("second node on a held prefix: %v, want Conflict naming node-a", err)
	}
	other, err := s3blobs.AcquireLease(ctx, remote(t, weed, "elsewhere"), s3blobs.Holder{Node: "node-b"}, 0, nil)
	if err != nil {
		t.Fatalf("second node on another prefix: %v", err)
	}
	other.Release(ctx)
	// The blobs never show the lease.
	s.List(ctx, func(key string) error {
		t.Errorf("List shows %q on a store holding only its lease", key)
		return nil
	})
	// node-a crashed (its lease stays) and starts again: it takes it back.
	a2, err := s3blobs.AcquireLease(ctx, s, s3blobs.Holder{Node: "node-a", Host: "host-a", PID: 12}, 0, nil)
	if err != nil {
		t.Fatalf("the same node after a restart: %v", err)
	}
	a.Release(ctx) // the crashed one's renewals stop; the lease is a2's now
	if err := a2.Release(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := s3blobs.AcquireLease(ctx, s, s3blobs.Holder{Node: "node-b"}, 0, nil)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	b.Release(ctx)

	// A lease whose heartbeat is older than its TTL is taken over.
	stale, _ := json.Marshal(s3blobs.Holder{Node: "node-c", Host: "gone", PID: 33, Heartbeat: time.Now().Add(-2 * s3blobs.LeaseTTL)})
	if err := s.Put(ctx, "lease.json", stale); err != nil {
		t.Fatal(err)
	}
	d, err := s3blobs.AcquireLease(ctx, s, s3blobs.Holder{Node: "node-d"}, 0, nil)
	if err != nil {
		t.Fatalf("stale lease: %v, want it taken over", err)
	}
	d.Release(ctx)
}

// TestALostLeaseFencesItsNode has a node find, at a renewal, that another
// node took its prefix (both read their own write back when they started
// in the same instant, or this one missed its renewals): from then on it
// writes and deletes nothing there, so it cannot sweep the other's packs.
func TestALostLeaseFencesItsNode(t *testing.T) {
	weed := s3test.Start(t)
	ctx := context.Background()
	mine, theirs := remote(t, weed, "raced"), remote(t, weed, "raced")
	a, err := s3blobs.AcquireLease(ctx, mine, s3blobs.Holder{Node: "node-a"}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release(ctx)
	if err := mine.Put(ctx, "packs/kept", []byte("a's pack")); err != nil {
		t.Fatal(err)
	}
	takeOver(t, ctx, a, theirs)
	if err := mine.Put(ctx, "packs/new", []byte("x")); snapdeck.ErrorCode(err) != snapdeck.Conflict {
		t.Errorf("put by the node that lost the prefix: %v, want Conflict", err)
	}
	if err := mine.Delete(ctx, "packs/kept"); snapdeck.ErrorCode(err) != snapdeck.Conflict {
		t.Errorf("delete by the node that lost the prefix: %v, want Conflict", err)
	}
	if got, err := theirs.Get(ctx, "packs/kept"); err != nil || string(got) != "a's pack" {
		t.Errorf("the pack after the fenced delete: %q, %v; want it kept", got, err)
	}
	if err := theirs.Put(ctx, "packs/b", []byte("b's pack")); err != nil {
		t.Errorf("the new holder's put: %v", err)
	}
}

// takeOver has node-b write the lease of theirs' prefix over a's, and
// checks that a's next renewal finds it lost, which fences a's node.
func takeOver(t *testing.T, ctx context.Context, a *s3blobs.Lease, theirs *s3blobs.S3) {
	t.Helper()
	took, _ := json.Marshal(s3blobs.Holder{Node: "node-b", Host: "host-b", PID: 22, Heartbeat: time.Now()})
	if err := theirs.Put(ctx, "lease.json", took); err != nil {
		t.Fatal(err)
	}
	if err := a.Renew(ctx); snapdeck.ErrorCode(err) != snapdeck.Conflict {
		t.Fatalf("renewal of a lease taken over: %v, want Conflict", err)
	}
}

const pageSize = 4096

func capture(t *testing.T, st *snapstore.Store, img []byte, base string) string {
	t.Helper()
	w, err := st.NewWriter(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if base != "" {
		w.UseBase(base)
	}
	for off := 0; off < len(img); off += pageSize {
		page := img[off : off+pageSize]
		if err := w.AddPage(sha256.Sum256(page), page); err != nil {
			t.Fatal(err)
		}
	}
	root, _, err := w.Finish(snapstore.Manifest{PageSize: pageSize, Pages: int64(len(img) / pageSize), Size: int64(len(img)), SHA256: sha256.Sum256(img)})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func restore(t *testing.T, st *snapstore.Store, root string) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := st.ReadImage(context.Background(), root, snapstore.CheckPages, func(b []byte) error { out.Write(b); return nil }); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// testImage is n pages that differ from each other.
func testImage(n int) []byte {
	img := make([]byte, n*pageSize)
	for p := range n {
		for i := 0; i < pageSize; i += 8 {
			binary.BigEndian.PutUint64(img[p*pageSize+i:], uint64(p)*7919+uint64(i))
		}
	}
	return img
}

// TestCacheCutsRequests counts the requests a capture, a restart and a
// restore make with and without the cache: with it, reopening reads no
// pack, and a capture after a 1% change and a restore read nothing from
// the server.
func TestCacheCutsRequests(t *testing.T) {
	weed := s3test.Start(t)
	ctx := context.Background()
	img := testImage(8192) // 32 MiB
	changed := bytes.Clone(img)
	for p := 0; p < 8192; p += 100 { // 1% of the pages
		changed[p*pageSize+17] ^= 0xff
	}
	type counts struct{ open, capture, warm, restore, cold s3blobs.Requests }
	run := func(t *testing.T, cached bool) counts {
		s, dir := remote(t, weed, fmt.Sprintf("%s-%v", prefixOf(t), cached)), t.TempDir()
		var c *s3blobs.Cache
		t.Cleanup(func() {
			if c != nil {
				c.Close()
			}
		})
		open := func() (*snapstore.Store, s3blobs.Requests) {
			if c != nil {
				c.Close() // its blocks are kept before the next one reads them
			}
			before := s.Requests()
			var b snapstore.Blobs = s
			if cached {
				var err error
				if c, err = s3blobs.NewCache(s, dir, 256<<20, nil); err != nil {
					t.Fatal(err)
				}
				b = c
			}
			st, err := snapstore.OpenBlobs(ctx, b, nil)
			if err != nil {
				t.Fatal(err)
			}
			return st, s.Requests().Sub(before)
		}
		var n counts
		st, _ := open()
		before := s.Requests()
		root := capture(t, st, img, "")
		n.capture = s.Requests().Sub(before)
		st.Close(ctx)
		st, n.open = open()
		defer st.Close(ctx)
		before = s.Requests()
		root2 := capture(t, st, changed, root)
		n.warm = s.Requests().Sub(before)
		before = s.Requests()
		if got := restore(t, st, root2); !bytes.Equal(got, changed) {
			t.Fatal("restored image differs")
		}
		n.restore = s.Requests().Sub(before)
		if cached {
			// A new node on the prefix: an empty cache reads runs of
			// blocks, several leaves and pages a request.
			cold, err := s3blobs.NewCache(s, t.TempDir(), 256<<20, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cold.Close)
			st3, err := snapstore.OpenBlobs(ctx, cold, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer st3.Close(ctx)
			before = s.Requests()
			if got := restore(t, st3, root2); !bytes.Equal(got, changed) {
				t.Fatal("restored image differs on a cold cache")
			}
			n.cold = s.Requests().Sub(before)
		}
		t.Logf("requests: reopen %+v, first capture %+v, capture after 1%% changed %+v, restore %+v, restore on a cold cache %+v", n.open, n.capture, n.warm, n.restore, n.cold)
		return n
	}
	without := run(t, false)
	with := run(t, true)
	if with.open.Get != 0 {
		t.Errorf("reopening with the cache made %d GETs, want 0 (the pack indexes are cached)", with.open.Get)
	}
	if without.open.Get < 2*int64(4) {
		t.Errorf("reopening without the cache made %d GETs: the test no longer tells the cache apart", without.open.Get)
	}
	if with.warm.Get != 0 || with.restore.Get != 0 {
		t.Errorf("with the cache: capture after 1%% changed made %d GETs and the restore %d, want 0 (all cached)", with.warm.Get, with.restore.Get)
	}
	if with.cold.Get*4 > without.restore.Get {
		t.Errorf("a restore on a cold cache made %d GETs, want at most a quarter of the %d without the cache", with.cold.Get, without.restore.Get)
	}
	if with.capture.Put != without.capture.Put {
		t.Errorf("the cache changed the PUTs of a capture: %d with, %d without", with.capture.Put, without.capture.Put)
	}
}

// TestColdRestoreReadsPacksWhole restores an image of 48 MiB on a new
// node (an empty cache): the content is the image's, and the restore reads
// each pack in about one request, not one per run of pages or leaves.
func TestColdRestoreReadsPacksWhole(t *testing.T) {
	weed := s3test.Start(t)
	ctx := context.Background()
	s := remote(t, weed, prefixOf(t))
	img := testImage(12288) // 48 MiB
	st, err := snapstore.OpenBlobs(ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	root := capture(t, st, img, "")
	st.Close(ctx)
	packs := 0
	if err := s.List(ctx, func(key string) error {
		if strings.HasPrefix(key, "packs/") {
			packs++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c, err := s3blobs.NewCache(s, dir, 256<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	st, err = snapstore.OpenBlobs(ctx, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(ctx)
	before := s.Requests()
	if got := restore(t, st, root); !bytes.Equal(got, img) {
		t.Fatal("restored image differs on a cold cache")
	}
	got := s.Requests().Sub(before)
	st.Close(ctx)
	c.Close() // every block it was to keep is kept
	// The packs' ends read when the store opened (their indexes) are
	// kept, and so are small runs; the packs a restore reads once are
	// not written to the cache's files as well as to the restored file.
	if kept := dirBytes(t, dir); kept > int64(packs)<<20+(2<<20) {
		t.Errorf("the cache keeps %d bytes after a cold restore of %d packs, want at most about 1 MiB a pack (their indexes)", kept, packs)
	}
	t.Logf("a cold restore of %d packs made %+v", packs, got)
	// Each pack once, and one more request at most (the root and the top
	// nodes lie at the end of the last pack, the packs' indexes at their
	// ends, read when the store opened).
	if want := int64(packs) + 1; got.Get > want {
		t.Errorf("a cold restore of %d packs made %d GETs, want at most %d", packs, got.Get, want)
	}
}

// dirBytes is the size of the files under dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n += info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
