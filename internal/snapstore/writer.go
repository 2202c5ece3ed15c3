package snapstore

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
)

// flushers is how many packs a capture writes at once while it keeps
// reading: two keep the disk busy while each waits for its pack to reach
// the disk.
const flushers = 2

// Writer adds one image to the store: pages in order, then Finish writes
// the tree and the root. Pages already stored are only referenced. New
// pieces go into packs written in the background; Finish makes every pack
// durable, and the root is written last, in a pack of its own written after
// all others are durable, so a crash never leaves a root pointing at
// missing data. A Writer is used by one goroutine.
//
// When the backend is a Batcher the packs are written through one Batch
// and made durable together in Finish; their pieces become visible to
// other writers only then, since until then they may not survive a crash.
type Writer struct {
	s        *Store
	ctx      context.Context
	pending  map[[32]byte]struct{} // new pieces of this image, not yet indexed
	cur      packBuf
	queue    chan packBuf
	wg       sync.WaitGroup
	errMu    sync.Mutex
	err      error
	newBytes int64
	pages    int64
	tree     treeBuilder
	done     bool

	batch    Batch        // nil: each pack is Put durably on its own
	stagedMu sync.Mutex   // guards staged
	staged   []stagedPack // packs in batch, indexed once it is committed
}

// stagedPack is a pack written in a batch and not yet committed.
type stagedPack struct {
	key     string
	size    int64
	entries []entry
}

// NewWriter starts adding an image. The caller must call Finish or Abort.
// Until then Sweep waits, so that nothing this image reuses disappears.
func (s *Store) NewWriter(ctx context.Context) (*Writer, error) {
	if err := s.ensureLoaded(ctx); err != nil {
		return nil, err
	}
	s.gc.RLock()
	w := &Writer{
		s:       s,
		ctx:     ctx,
		pending: make(map[[32]byte]struct{}),
		queue:   make(chan packBuf, 1),
	}
	w.tree.emit = func(data []byte) ([32]byte, error) {
		h := sha256.Sum256(data)
		return h, w.add(h, KindNode, data)
	}
	if b, ok := s.blobs.(Batcher); ok {
		w.batch = b.NewBatch()
	}
	for range flushers {
		w.wg.Add(1)
		go w.flusher()
	}
	return w, nil
}

func (w *Writer) flusher() {
	defer w.wg.Done()
	for p := range w.queue {
		if w.failed() != nil {
			continue // drain: a capture that failed writes nothing more
		}
		if err := w.putPack(p); err != nil {
			w.setErr(err)
			continue
		}
		fault("capture:pack-written")
	}
}

func (w *Writer) setErr(err error) {
	w.errMu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.errMu.Unlock()
}

func (w *Writer) failed() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.err
}

// putPack writes a pack: into the batch, to be indexed when Finish has
// committed it, or durably on its own and indexed at once.
func (w *Writer) putPack(p packBuf) error {
	if w.batch == nil {
		return w.s.putPack(w.ctx, p)
	}
	entries := p.entries
	data := p.seal()
	key := newPackKey(w.s.now())
	if err := w.batch.Put(w.ctx, key, data); err != nil {
		return fmt.Errorf("write snapshot pack: %w", err)
	}
	w.stagedMu.Lock()
	w.staged = append(w.staged, stagedPack{key: key, size: int64(len(data)), entries: entries})
	w.stagedMu.Unlock()
	return nil
}

// putPack writes a pack durably and only then makes its pieces visible to
// other writers for deduplication.
func (s *Store) putPack(ctx context.Context, p packBuf) error {
	entries := p.entries
	data := p.seal()
	key := newPackKey(s.now())
	if err := s.blobs.Put(ctx, key, data); err != nil {
		return fmt.Errorf("write snapshot pack: %w", err)
	}
	s.register(key, int64(len(data)), entries)
	return nil
}

// add stores a piece unless it is stored already.
func (w *Writer) add(h [32]byte, kind Kind, data []byte) error {
	if _, ok := w.pending[h]; ok || w.s.has(h) {
		return nil
	}
	if w.cur.data == nil {
		w.cur.data = make([]byte, 0, packTarget+packTarget/32)
	}
	w.pending[h] = struct{}{}
	w.cur.add(h, kind, data)
	w.newBytes += int64(len(data))
	if len(w.cur.data) >= packTarget {
		return w.seal()
	}
	return nil
}

func (w *Writer) seal() error {
	if err := w.failed(); err != nil {
		return err
	}
	select {
	case w.queue <- w.cur:
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
	w.cur = packBuf{}
	return nil
}

// AddPage appends the next page of the image; h must be its SHA-256.
// data is copied if it is new, so the caller may reuse it.
func (w *Writer) AddPage(h [32]byte, data []byte) error {
	if err := w.add(h, KindPage, data); err != nil {
		return err
	}
	w.pages++
	return w.tree.add(0, h)
}

// Finish writes the tree and the root for manifest m, waits until all of
// it is durable, and returns the root and the bytes this image added.
func (w *Writer) Finish(m Manifest) (root string, newBytes int64, err error) {
	defer w.Abort()
	if m.Pages != w.pages {
		return "", 0, fmt.Errorf("snapshot manifest says %d pages, %d were added", m.Pages, w.pages)
	}
	depth, top, err := w.tree.finish()
	if err != nil {
		return "", 0, err
	}
	rootData := encodeRoot(m, depth, top)
	rootHash := sha256.Sum256(rootData)
	// Every pack before the root's must be durable before the root is.
	if len(w.cur.entries) > 0 {
		if err := w.seal(); err != nil {
			return "", 0, err
		}
	}
	close(w.queue)
	w.wg.Wait()
	w.done = true
	if err := w.failed(); err != nil {
		return "", 0, err
	}
	if err := w.ctx.Err(); err != nil {
		return "", 0, err
	}
	if w.batch != nil {
		fault("capture:before-commit")
		if err := w.batch.Commit(w.ctx); err != nil {
			return "", 0, fmt.Errorf("write snapshot packs: %w", err)
		}
		for _, p := range w.staged {
			w.s.register(p.key, p.size, p.entries)
		}
		w.staged = nil
	}
	fault("capture:before-root")
	if !w.s.has(rootHash) {
		var p packBuf
		p.add(rootHash, KindRoot, rootData)
		if err := w.s.putPack(w.ctx, p); err != nil {
			return "", 0, err
		}
		w.newBytes += int64(len(rootData))
	}
	fault("capture:root-written")
	return RootString(rootHash), w.newBytes, nil
}

// Abort ends an image without a root; packs already written become garbage
// for a later Sweep. Calling it after Finish does nothing.
func (w *Writer) Abort() {
	if w.s == nil {
		return
	}
	if !w.done {
		w.setErr(context.Canceled)
		close(w.queue)
		w.wg.Wait()
		w.done = true
	}
	if w.batch != nil {
		w.batch.Discard() // after a Commit, nothing is left to discard
	}
	w.s.gc.RUnlock()
	w.s = nil
}
