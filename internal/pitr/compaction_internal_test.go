package pitr

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"
)

// TestPacedReaderKeepsItsRate reads 2 MiB at 8 MiB a second, which must
// take about 250 ms, and checks that a context ended stops a paced read.
func TestPacedReaderKeepsItsRate(t *testing.T) {
	data := bytes.Repeat([]byte{7}, 2<<20)
	ctx := context.WithValue(context.Background(), paceKey{}, pace{rate: 8 << 20})
	start := time.Now()
	got, err := io.ReadAll(paced(ctx, bytes.NewReader(data)))
	took := time.Since(start)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes (%v), want the %d written", len(got), err, len(data))
	}
	if took < 240*time.Millisecond {
		t.Errorf("2 MiB at 8 MiB/s took %s, want at least 250 ms", took)
	}

	if r := paced(context.Background(), bytes.NewReader(data)); r == nil {
		t.Fatal("nil reader")
	} else if _, ok := r.(*pacedReader); ok {
		t.Error("a context without a rate paced the read")
	}

	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), paceKey{}, pace{rate: 1 << 20}))
	time.AfterFunc(100*time.Millisecond, cancel)
	start = time.Now()
	_, err = io.ReadAll(paced(ctx, bytes.NewReader(data)))
	if !errors.Is(err, context.Canceled) || time.Since(start) > time.Second {
		t.Errorf("a read at 1 MiB/s cancelled after 100 ms: %v after %s, want context.Canceled at once", err, time.Since(start))
	}
}

// TestPacedReaderStopsBehindItsPace cancels a paced read that is behind its
// pace (a rate no read reaches), as halt cancels a compaction before a
// swap: it must end with context.Canceled at its next read, not read its
// input to the end.
func TestPacedReaderStopsBehindItsPace(t *testing.T) {
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), paceKey{}, pace{rate: 1 << 50}))
	rd := paced(ctx, iotest.OneByteReader(bytes.NewReader(make([]byte, 1<<20))))
	if _, err := io.ReadFull(rd, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	cancel()
	n, err := io.Copy(io.Discard, rd)
	if !errors.Is(err, context.Canceled) || n > 0 {
		t.Errorf("after the cancel, read %d more bytes (%v), want none and context.Canceled", n, err)
	}
}

// TestReadAllSizesItsBuffer reads a file, a reader of the size its
// context announces and one larger than announced: each whole, the first
// two into a buffer made once.
func TestReadAllSizesItsBuffer(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/16+1)
	path := filepath.Join(t.TempDir(), "f.ltx")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := readAll(context.Background(), f, f)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file: read %d bytes (%v), want its %d", len(got), err, len(data))
	}
	if cap(got) != len(data)+64<<10 {
		t.Errorf("file: buffer of %d bytes for %d, want it made once at %d", cap(got), len(data), len(data)+64<<10)
	}

	ctx := context.WithValue(context.Background(), sizeKey{}, int64(len(data)))
	got, err = readAll(ctx, iotest.HalfReader(bytes.NewReader(data)), nil)
	if err != nil || !bytes.Equal(got, data) || cap(got) != len(data)+64<<10 {
		t.Errorf("announced: read %d bytes into %d (%v), want %d into %d", len(got), cap(got), err, len(data), len(data)+64<<10)
	}

	ctx = context.WithValue(context.Background(), sizeKey{}, int64(1000))
	got, err = readAll(ctx, bytes.NewReader(data), nil)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("larger than announced: read %d bytes (%v), want %d", len(got), err, len(data))
	}
}

// busy is a console whose jobs run until release is closed.
type busy struct{ release chan struct{} }

func (b busy) WaitQuiet(ctx context.Context) error {
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestPacedReaderGivesWayToJobs reads 2 MiB at 8 MiB a second while the
// console's jobs run for 300 ms: nothing is read until they end, then the
// read keeps its rate (about 250 ms, not a burst to catch up). With jobs
// that never end, it gives way for its budget only.
func TestPacedReaderGivesWayToJobs(t *testing.T) {
	data := bytes.Repeat([]byte{7}, 2<<20)
	jobs := busy{make(chan struct{})}
	r := &Replicators{cfg: Config{Quiet: jobs}}
	ctx := context.WithValue(context.Background(), paceKey{}, pace{rate: 8 << 20, giveWay: r.giveWayFor(time.Minute)})
	rd := paced(ctx, bytes.NewReader(data))
	start := time.Now()
	time.AfterFunc(300*time.Millisecond, func() { close(jobs.release) })
	first := make([]byte, 1)
	if _, err := io.ReadFull(rd, first); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 290*time.Millisecond {
		t.Errorf("the first byte read after %s while jobs ran for 300 ms", took)
	}
	resumed := time.Now()
	rest, err := io.ReadAll(rd)
	if err != nil || len(rest) != len(data)-1 {
		t.Fatalf("read %d bytes (%v), want %d", len(rest), err, len(data)-1)
	}
	if took := time.Since(resumed); took < 230*time.Millisecond {
		t.Errorf("the rest read in %s after the jobs ended, want about 250 ms at 8 MiB/s", took)
	}

	r = &Replicators{cfg: Config{Quiet: busy{make(chan struct{})}}}
	ctx = context.WithValue(context.Background(), paceKey{}, pace{rate: 64 << 20, giveWay: r.giveWayFor(200 * time.Millisecond)})
	start = time.Now()
	if _, err := io.ReadAll(paced(ctx, bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 190*time.Millisecond || took > 2*time.Second {
		t.Errorf("with jobs without end and 200 ms to give way, the read took %s", took)
	}
}

// jobsAtEOF is a reader that starts a console job (jobs.busy) once it
// has been read to its end: the compaction it feeds then writes while
// the job runs, unless it gives way.
type jobsAtEOF struct {
	r     io.Reader
	start func()
}

func (j jobsAtEOF) Read(b []byte) (int, error) {
	n, err := j.r.Read(b)
	if err == io.EOF && j.start != nil {
		j.start()
	}
	return n, err
}

// TestCompactionWriteGivesWayToJobs: a compaction read whole waits for a
// console job that began meanwhile before it writes its file, for what is
// left of its budget.
func TestCompactionWriteGivesWayToJobs(t *testing.T) {
	file, cl := onePageLTX(t), localClient(t)
	jobs := &startable{release: make(chan struct{})}
	r := &Replicators{cfg: Config{Quiet: jobs}}
	ctx := context.WithValue(context.Background(), paceKey{}, pace{rate: 64 << 20, giveWay: r.giveWayFor(time.Minute)})
	var read time.Time
	in := jobsAtEOF{bytes.NewReader(file.Bytes()), func() {
		if read.IsZero() {
			read = time.Now()
			jobs.busy.Store(true)
			time.AfterFunc(300*time.Millisecond, func() { close(jobs.release) })
		}
	}}
	if _, err := cl.WriteLTXFile(ctx, 1, 1, 1, in); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(read); took < 290*time.Millisecond {
		t.Errorf("the compacted file was written %s after it was read, while a job ran for 300 ms", took)
	}
	infos, _, err := cl.list(context.Background(), 1, 0)
	if err != nil || len(infos) != 1 {
		t.Fatalf("stored %v (%v), want the one file", infos, err)
	}
}

// startable is the console's jobs: none until busy is set, then one
// until release is closed.
type startable struct {
	busy    atomic.Bool
	release chan struct{}
}

func (s *startable) WaitQuiet(ctx context.Context) error {
	if !s.busy.Load() {
		return nil
	}
	select {
	case <-s.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
