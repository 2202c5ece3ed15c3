package snapstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/durable"
)

// TestPutWritesBehindWhole checks that Put, which writes a blob a piece at
// a time with each piece's writeback started behind it, stores every size
// whole: empty, within one piece, at and across piece boundaries.
func TestPutWritesBehindWhole(t *testing.T) {
	ctx := context.Background()
	l, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, blobWriteSize + 3, writeBehindPiece - 1, writeBehindPiece, writeBehindPiece + 1, 3*writeBehindPiece + 5} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rand.IntN(256))
		}
		key := fmt.Sprintf("pitr/x/l1/%d", n)
		if err := l.Put(ctx, key, data); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		got, err := l.Get(ctx, key)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes put, %d read back (%v), or not the same", n, len(got), err)
		}
	}
}

// BenchmarkPutBesideSmallFsyncs puts a blob of SNAPDECK_BENCH_PUT_MIB
// (default 256) MiB while another goroutine writes, fsyncs and renames a
// 4 KiB file into place every 5 ms (as Litestream writes a level-0 file
// after a commit), and reports the worst of those small writes beside the
// put, alternately with Put's writeback behind each piece ("behind") and
// with the whole blob written, then fsynced ("whole", Put before).
func BenchmarkPutBesideSmallFsyncs(b *testing.B) {
	size := 256 << 20
	if s := os.Getenv("SNAPDECK_BENCH_PUT_MIB"); s != "" {
		fmt.Sscan(s, &size)
		size <<= 20
	}
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + i>>13)
	}
	dir := b.TempDir()
	l, err := NewLocal(filepath.Join(dir, "blobs"))
	if err != nil {
		b.Fatal(err)
	}
	small := filepath.Join(dir, "small")
	if err := os.MkdirAll(small, 0o755); err != nil {
		b.Fatal(err)
	}
	ways := map[string]func(key string) error{
		"behind": func(key string) error { return l.Put(context.Background(), key, data) },
		"whole": func(key string) error {
			path, err := l.path(key)
			if err != nil {
				return err
			}
			os.MkdirAll(filepath.Dir(path), 0o755)
			tmp, err := writeTemp(path, data, (*os.File).Sync)
			if err == nil {
				err = os.Rename(tmp, path)
			}
			if err == nil {
				err = durable.SyncDir(filepath.Dir(path))
			}
			return err
		},
	}
	worst := map[string][]time.Duration{}
	for i := range b.N * 6 {
		way := []string{"whole", "behind"}[i%2]
		var stop atomic.Bool
		done := make(chan []time.Duration)
		go func() {
			var lat []time.Duration
			page := make([]byte, 4096)
			for n := 0; !stop.Load(); n++ {
				t := time.Now()
				name := filepath.Join(small, fmt.Sprint(n%16))
				if err := os.WriteFile(name+".tmp", page, 0o644); err != nil {
					b.Error(err)
				}
				f, err := os.Open(name + ".tmp")
				if err == nil {
					err = f.Sync()
					f.Close()
				}
				if err == nil {
					err = os.Rename(name+".tmp", name)
				}
				if err == nil {
					err = durable.SyncDir(small)
				}
				if err != nil {
					b.Error(err)
				}
				lat = append(lat, time.Since(t))
				time.Sleep(5 * time.Millisecond)
			}
			done <- lat
		}()
		time.Sleep(100 * time.Millisecond)
		start := time.Now()
		if err := ways[way](fmt.Sprintf("pitr/bench/l1/%d", i)); err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		time.Sleep(100 * time.Millisecond)
		stop.Store(true)
		lat := <-done
		slices.Sort(lat)
		worst[way] = append(worst[way], lat[len(lat)-1])
		b.Logf("%s: put %d MiB in %s; beside it %d small writes, median %s, worst %s", way, size>>20,
			took.Round(time.Millisecond), len(lat), lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)-1].Round(time.Millisecond))
		os.Remove(filepath.Join(dir, "blobs", "pitr", "bench", "l1", fmt.Sprint(i)))
	}
	for way, w := range worst {
		slices.Sort(w)
		b.ReportMetric(float64(w[len(w)/2])/float64(time.Millisecond), "median-worst-small-ms-"+way)
	}
}

// endsAfter is a context whose Err is Canceled from its n-th call on: a
// context that ends while a Put writes.
type endsAfter struct {
	context.Context
	n     int
	calls atomic.Int32
}

func (c *endsAfter) Err() error {
	if int(c.calls.Add(1)) >= c.n {
		return context.Canceled
	}
	return nil
}

// TestPutStopsWhenItsContextEnds puts a blob of several pieces with a
// context that ends after its first writes: Put stops there with the
// context's error and stores nothing, so that a point-in-time compaction
// halted for a swap does not finish writing a file as large as the
// database first.
func TestPutStopsWhenItsContextEnds(t *testing.T) {
	l, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := &endsAfter{Context: context.Background(), n: 3}
	err = l.Put(ctx, "pitr/x/l1/big", make([]byte, 3*writeBehindPiece))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with its context ended meanwhile: %v, want context.Canceled", err)
	}
	if _, err := l.Get(context.Background(), "pitr/x/l1/big"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the blob after a Put that stopped: %v, want not found", err)
	}
}
