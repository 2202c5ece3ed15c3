package pitr

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// TestPacedReaderKeepsItsRate reads 2 MiB at 8 MiB a second, which must
// take about 250 ms, and checks that a context ended stops a paced read.
func TestPacedReaderKeepsItsRate(t *testing.T) {
	data := bytes.Repeat([]byte{7}, 2<<20)
	ctx := context.WithValue(context.Background(), paceKey{}, int64(8<<20))
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

	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), paceKey{}, int64(1<<20)))
	time.AfterFunc(100*time.Millisecond, cancel)
	start = time.Now()
	_, err = io.ReadAll(paced(ctx, bytes.NewReader(data)))
	if !errors.Is(err, context.Canceled) || time.Since(start) > time.Second {
		t.Errorf("a read at 1 MiB/s cancelled after 100 ms: %v after %s, want context.Canceled at once", err, time.Since(start))
	}
}
