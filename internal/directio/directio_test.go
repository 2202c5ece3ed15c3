package directio

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestBufferIsAlignedAndWritesDirectly(t *testing.T) {
	for _, n := range []int{2 * Align, 3 * Align, 1 << 20} {
		b := Buffer(n, n)
		if !Aligned(b) || len(b) != n || cap(b) != n {
			t.Fatalf("Buffer(%d): len %d cap %d aligned %v", n, len(b), cap(b), Aligned(b))
		}
		if Aligned(b[1:1+Align]) || Aligned(b[:Align-512]) {
			t.Errorf("Aligned accepts a slice off the alignment")
		}
	}
	path := filepath.Join(t.TempDir(), "f")
	f, direct, err := Create(path, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	b := Buffer(2*Align, 2*Align)
	for i := range b {
		b[i] = byte(i * 7)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatalf("write (direct %v): %v", direct, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, b) {
		t.Errorf("read back %d bytes, not what was written", len(got))
	}
	if _, _, err := Create(path, 0o640); err == nil {
		t.Errorf("Create over an existing file: got nil, want an error")
	}
}

func TestOpenWriterWritesAnExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	f, direct, err := OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	b := Buffer(2*Align, 2*Align)
	for i := range b {
		b[i] = byte(i * 3)
	}
	if _, err := f.WriteAt(b, Align); err != nil {
		t.Fatalf("write (direct %v): %v", direct, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if len(got) != 3*Align || !bytes.Equal(got[Align:], b) {
		t.Errorf("read back %d bytes, not the %d written after a hole of %d", len(got), len(b), Align)
	}
	if _, _, err := OpenWriter(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Errorf("OpenWriter of a missing file: got nil, want an error")
	}
}
