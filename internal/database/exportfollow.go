package database

import (
	"errors"
	"io"
	"os"
	"sync"
)

// preparation is an export being written. It is the io.Writer the .dump is
// written through, and it tells the downloads that follow the file how far
// it is written and how the writing ended.
type preparation struct {
	file  *os.File // being written; renamed into the cache as name when done
	cache *exportCache
	name  string

	mu      sync.Mutex
	grew    *sync.Cond
	written int64
	done    bool
	err     error
}

func newPreparation(f *os.File, cache *exportCache, name string) *preparation {
	p := &preparation{file: f, cache: cache, name: name}
	p.grew = sync.NewCond(&p.mu)
	return p
}

// Write appends to the file and wakes the downloads waiting for it.
func (p *preparation) Write(b []byte) (int, error) {
	n, err := p.file.Write(b)
	p.mu.Lock()
	p.written += int64(n)
	p.mu.Unlock()
	p.grew.Broadcast()
	return n, err
}

// finish records how the preparation ended, nil once the file is whole and
// installed.
func (p *preparation) finish(err error) {
	p.mu.Lock()
	p.done, p.err = true, err
	if err == nil {
		p.err = io.EOF
	}
	p.mu.Unlock()
	p.grew.Broadcast()
}

// errPreparationFailed ends a download whose export failed part way.
var errPreparationFailed = errors.New("the export failed while it was being downloaded")

// follow opens the file for one download that reads it as it is written.
// The descriptor keeps reading the same file after it is renamed into the
// cache; the download holds the cache's lease on that name meanwhile, so
// the cache does not remove the file under it.
func (p *preparation) follow(download string) (*Export, error) {
	f, err := os.Open(p.file.Name())
	if err != nil {
		return nil, err
	}
	return &Export{File: f, Name: download, following: p, release: p.cache.holdLocked(p.name)}, nil
}

// read reads the followed file at off, waiting for it to be written that
// far; io.EOF once the preparation succeeded and everything is read.
func (p *preparation) read(f *os.File, b []byte, off int64) (int, error) {
	p.mu.Lock()
	for off >= p.written && !p.done {
		p.grew.Wait()
	}
	written, done, end := p.written, p.done, p.err
	p.mu.Unlock()
	if off < written {
		return f.ReadAt(b[:min(int64(len(b)), written-off)], off)
	}
	if done && end == io.EOF {
		return 0, io.EOF
	}
	return 0, errors.Join(errPreparationFailed, end)
}
