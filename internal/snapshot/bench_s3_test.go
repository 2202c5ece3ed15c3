package snapshot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/snapdeck/snapdeck/internal/snapstore"
	"github.com/snapdeck/snapdeck/internal/snapstore/s3blobs"
	"github.com/snapdeck/snapdeck/internal/snapstore/s3blobs/s3test"
)

// BenchmarkObjectStorage measures the snapshot store on a real SeaweedFS
// (weed mini on this machine) against minio-go moving the same file in the
// same run: a first capture against an upload in 16 MiB parts, a restore
// (with the cache cold and warm) against a download, a capture after 1% of
// the pages changed against the same capture on local disk, and the
// requests each makes with and without the local cache. It runs once,
// whatever -benchtime says; SNAPDECK_BENCH_SIZE and SNAPDECK_BENCH_DIR as
// for BenchmarkSnapshotEngine.
//
//	SNAPDECK_BENCH_SIZE=256MiB SNAPDECK_BENCH_DIR=/tmp/sdbench go test -run '^$' -bench ObjectStorage -benchtime 1x -timeout 60m ./internal/snapshot/
func BenchmarkObjectStorage(b *testing.B) {
	t := b
	ctx := context.Background()
	dir, path := benchDB(t)
	fi, _ := os.Stat(path)
	weed := s3test.Start(t)
	work := t.TempDir()
	db := filepath.Join(work, "db.sqlite")
	copyFile(t, path, db)
	mib := float64(fi.Size()) / (1 << 20)
	var lines []string
	row := func(what string, secs float64, ref float64, reqs string) {
		ratio := ""
		if ref > 0 {
			ratio = fmt.Sprintf("%.2f", secs/ref)
		}
		lines = append(lines, fmt.Sprintf("| %s | %.2f s | %s | %s |", what, secs, ratio, reqs))
	}
	// Each step is labelled step=N in a CPU profile (-cpuprofile; pprof
	// -tagfocus step=N shows one), in the order they run.
	steps := 0
	timed := func(f func()) float64 {
		settle(t)
		steps++
		start := time.Now()
		pprof.Do(ctx, pprof.Labels("step", strconv.Itoa(steps)), func(context.Context) { f() })
		return time.Since(start).Seconds()
	}

	client, err := minio.New(strings.TrimPrefix(weed.Endpoint, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(weed.AccessKeyID, weed.SecretAccessKey, ""), BucketLookup: minio.BucketLookupPath, Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	upload := timed(func() {
		if _, err := client.FPutObject(ctx, weed.Bucket, "plain/db.sqlite", db, minio.PutObjectOptions{PartSize: 16 << 20}); err != nil {
			t.Fatal(err)
		}
	})
	download := timed(func() {
		if err := client.FGetObject(ctx, weed.Bucket, "plain/db.sqlite", filepath.Join(work, "downloaded"), minio.GetObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	os.Remove(filepath.Join(work, "downloaded"))
	row("minio-go upload, 16 MiB parts", upload, 0, "")
	row("minio-go download", download, 0, "")

	var caches []*s3blobs.Cache
	defer func() {
		for _, c := range caches {
			c.Close()
		}
	}()
	open := func(prefix, cacheDir string) (*snapstore.Store, *s3blobs.S3) {
		s, err := s3blobs.New(s3blobs.Config{Bucket: weed.Bucket, Prefix: prefix, Endpoint: weed.Endpoint,
			AccessKeyID: weed.AccessKeyID, SecretAccessKey: weed.SecretAccessKey})
		if err != nil {
			t.Fatal(err)
		}
		var blobs snapstore.Blobs = s
		if cacheDir != "" {
			c, err := s3blobs.NewCache(s, cacheDir, 4<<30, nil)
			if err != nil {
				t.Fatal(err)
			}
			caches = append(caches, c)
			blobs = c
		}
		st, err := snapstore.OpenBlobs(ctx, blobs, nil)
		if err != nil {
			t.Fatal(err)
		}
		return st, s
	}
	reqs := func(r s3blobs.Requests) string {
		return fmt.Sprintf("%d (%d PUT, %d GET, %d LIST)", r.Total(), r.Put, r.Get, r.List)
	}
	local, err := snapstore.Open(ctx, filepath.Join(work, "local"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cached, cs := open("cached", filepath.Join(work, "cache"))
	uncached, us := open("uncached", "")

	// The first capture of the same file: locally, on S3 with the cache,
	// on S3 without.
	var imgLocal, imgCached, imgUncached Image
	tLocal := timed(func() { imgLocal = mustCapture(t, db, local, "") })
	before := cs.Requests()
	tCached := timed(func() { imgCached = mustCapture(t, db, cached, "") })
	rCached := cs.Requests().Sub(before)
	before = us.Requests()
	tUncached := timed(func() { imgUncached = mustCapture(t, db, uncached, "") })
	rUncached := us.Requests().Sub(before)
	row("first capture, local disk", tLocal, 0, "")
	row("first capture, S3 (cache)", tCached, upload, reqs(rCached))
	row("first capture, S3 (no cache)", tUncached, upload, reqs(rUncached))

	// 1% of the pages change; the same capture with a base, each way.
	changePages(t, db, imgLocal.Pages/100, 1)
	tLocal = timed(func() { imgLocal = mustCapture(t, db, local, imgLocal.Root) })
	before = cs.Requests()
	tCached = timed(func() { imgCached = mustCapture(t, db, cached, imgCached.Root) })
	rCached = cs.Requests().Sub(before)
	before = us.Requests()
	tUncached = timed(func() { imgUncached = mustCapture(t, db, uncached, imgUncached.Root) })
	rUncached = us.Requests().Sub(before)
	row("capture after 1% changed, local disk", tLocal, 0, "")
	row("capture after 1% changed, S3 (cache)", tCached, tLocal, reqs(rCached))
	row("capture after 1% changed, S3 (no cache)", tUncached, tLocal, reqs(rUncached))

	// Restores of the last image: warm cache, cold cache (a new node on
	// the same prefix), no cache.
	target := filepath.Join(work, "restored.sqlite")
	restore := func(st *snapstore.Store, img Image) {
		if err := Materialize(ctx, st, img, target, ForRestore, nil); err != nil {
			t.Fatal(err)
		}
		os.Remove(target)
	}
	tLocal = timed(func() { restore(local, imgLocal) })
	before = cs.Requests()
	tCached = timed(func() { restore(cached, imgCached) })
	rCached = cs.Requests().Sub(before)
	cached.Close(ctx)
	caches[0].Close()
	// A new node on the same prefix: an empty cache.
	cold, colds := open("cached", filepath.Join(work, "cold-cache"))
	rOpen := colds.Requests()
	before = colds.Requests()
	tCold := timed(func() { restore(cold, imgCached) })
	rCold := colds.Requests().Sub(before)
	before = us.Requests()
	tUncached = timed(func() { restore(uncached, imgUncached) })
	rUncached = us.Requests().Sub(before)
	reopened, rs := open("cached", filepath.Join(work, "cache"))
	rReopen := rs.Requests()
	uncached.Close(ctx)
	uncached, us = open("uncached", "")
	rReopenUncached := us.Requests()
	row("restore, local disk", tLocal, 0, "")
	row("restore, S3 (warm cache)", tCached, download, reqs(rCached))
	row("restore, S3 (cold cache)", tCold, download, reqs(rCold))
	row("restore, S3 (no cache)", tUncached, download, reqs(rUncached))
	lines = append(lines, fmt.Sprintf("| open the store, S3 (warm cache / cold cache / no cache) | | | %s / %s / %s |", reqs(rReopen), reqs(rOpen), reqs(rReopenUncached)))
	// SNAPDECK_BENCH_PAIRS=N: N more pairs of a download and a cold
	// restore (each on a new node, its cache empty), back to back, for
	// ratios less at the mercy of a shared machine than one pair.
	pairs, _ := strconv.Atoi(os.Getenv("SNAPDECK_BENCH_PAIRS"))
	for i := range pairs {
		d := timed(func() {
			if err := client.FGetObject(ctx, weed.Bucket, "plain/db.sqlite", filepath.Join(work, "downloaded"), minio.GetObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		})
		os.Remove(filepath.Join(work, "downloaded"))
		st, s := open("cached", filepath.Join(work, fmt.Sprintf("pair-cache-%d", i)))
		before := s.Requests()
		r := timed(func() { restore(st, imgCached) })
		row(fmt.Sprintf("pair %d: download / cold restore", i+1), r, d, fmt.Sprintf("%.2f s / %d GET", d, s.Requests().Sub(before).Get))
		st.Close(ctx)
		caches[len(caches)-1].Close()
	}
	for _, st := range []*snapstore.Store{local, cold, uncached, reopened} {
		st.Close(ctx)
		caches[len(caches)-1].Close()
	}
	t.Logf("database %s: %.0f MiB; SeaweedFS weed mini on loopback\n| step | time | ratio to reference | requests |\n| --- | --- | --- | --- |\n%s", path, mib, strings.Join(lines, "\n"))
	_ = dir
}

func mustCapture(t testing.TB, db string, st *snapstore.Store, base string) Image {
	t.Helper()
	img, err := CaptureWithBase(context.Background(), db, st, base, nil)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
