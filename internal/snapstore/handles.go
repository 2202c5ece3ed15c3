package snapstore

import (
	"container/list"
	"os"
	"sync"
)

// handles keeps the files of recently read blobs open, so that reading a
// snapshot costs one open per pack instead of one per range: an export of
// 1 GiB read its packs in about 1,000 ranges, and opening and closing the
// pack for each took 0.18 CPU-seconds of a 3.35 s export on the benchmark
// machine.
//
// A handle is found by key. Whatever changes the blob under a key (Delete,
// Put, a batch's Commit, PutFile) forgets that key's handle once the name
// has changed on disk; a miss opens the file while holding mu. So a
// handle in the cache was opened after the last change to its name had
// completed, or is forgotten by that change, and a read that starts after
// a Delete (or Put) has returned never sees the old file. A read already
// under way when the blob changes finishes on the file it opened, as it
// would have without the cache.
//
// At most handleCacheSize files stay open: the least recently used one is
// closed when a new one comes in, or, while a read still uses it, as soon
// as that read ends.
type handles struct {
	mu     sync.Mutex
	byKey  map[string]*handle
	lru    list.List // of *handle, most recently used first
	closed bool      // Close has run: files are opened per read and closed after
}

// handleCacheSize bounds the open files. A snapshot's reads walk its
// packs in order, one or two at a time per reader, so a few suffice; 64
// leave room for several exports and restores at once (8 MiB packs: 512
// MiB of data) and stay far from any limit on open files.
const handleCacheSize = 64

// handle is one open blob file.
type handle struct {
	key  string
	f    *os.File
	size int64         // the file's size when opened: blobs never change in place
	refs int           // reads using f; guarded by handles.mu
	gone bool          // no longer in the cache: closed when refs drops to 0
	elem *list.Element // in handles.lru while cached
}

// acquire returns an open handle on path for key, opening it with open if
// none is cached; the caller passes it to release when done.
func (hs *handles) acquire(key, path string) (*handle, error) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if h, ok := hs.byKey[key]; ok {
		h.refs++
		hs.lru.MoveToFront(h.elem)
		return h, nil
	}
	// Opened under mu, so that no change to the name can complete between
	// this open and the handle being findable (see forget).
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	h := &handle{key: key, f: f, size: fi.Size(), refs: 1}
	if hs.closed {
		h.gone = true // not cached: closed by its release
		return h, nil
	}
	if hs.byKey == nil {
		hs.byKey = make(map[string]*handle)
	}
	hs.byKey[key] = h
	h.elem = hs.lru.PushFront(h)
	for hs.lru.Len() > handleCacheSize {
		hs.dropLocked(hs.lru.Back().Value.(*handle))
	}
	return h, nil
}

// release ends one read's use of h.
func (hs *handles) release(h *handle) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if h.refs--; h.refs == 0 && h.gone {
		h.f.Close()
	}
}

// forget drops the cached handle of key, if any; its file is closed now
// or when the last read using it ends. Called after every change to the
// blob under key, and before a delete (so that a file nobody reads is
// closed before its name goes).
func (hs *handles) forget(key string) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if h, ok := hs.byKey[key]; ok {
		hs.dropLocked(h)
	}
}

// dropLocked removes h from the cache; hs.mu is held.
func (hs *handles) dropLocked(h *handle) {
	delete(hs.byKey, h.key)
	hs.lru.Remove(h.elem)
	h.elem = nil
	h.gone = true
	if h.refs == 0 {
		h.f.Close()
	}
}

// close closes every cached file not in use, and the others as their
// reads end; later reads open their file for themselves.
func (hs *handles) close() {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	hs.closed = true
	for _, h := range hs.byKey {
		hs.dropLocked(h)
	}
}
