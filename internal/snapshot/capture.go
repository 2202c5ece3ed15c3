// Package snapshot takes consistent images of live WAL-mode SQLite
// databases into the snapshot store, and turns them back into database
// files: materialised for restore or create-from-snapshot, streamed for
// export, verified, and installed over a database atomically.
package snapshot

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"runtime"
	"sync"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapstore"

	_ "modernc.org/sqlite" // the "sqlite" driver, built with sqlite_dbpage
)

// faultHook, when set, is called at named points of materialise and
// install; crash tests set it in a child process to die there.
var faultHook func(point string)

func fault(point string) {
	if faultHook != nil {
		faultHook(point)
	}
}

// Image describes a snapshot image in the store. Root alone is enough to
// rebuild it; the other fields are a copy of what the root records, kept
// by callers so that lists need not read the store.
type Image struct {
	Root     string
	Size     int64
	SHA256   string // hex of the whole database image
	PageSize int
	Pages    int64
	NewBytes int64 // bytes this capture added to the store
}

// Progress reports work done and the total, in bytes of the image. It may
// be nil.
type Progress func(done, total int64)

// chunkBytes is how much the reader hands to the hashers at once: big
// enough to amortise channel hand-offs, small enough that the pipeline's
// buffers stay a few MiB.
const chunkBytes = 1 << 20

// chunkBuffers is how many chunks are read ahead of the hashers or wait for
// the image hash.
const chunkBuffers = 6

// hashedChunk is a chunk of whole pages, in page order, from a leaf
// boundary, with the fingerprint of each page, and the SHA-256 of each
// page that is not the base's page at the same index.
type hashedChunk struct {
	data   []byte
	hashes [][32]byte
	prints []pagePrint
	// asBase says which pages are the base's (their fingerprint is the
	// base's there): they are listed by the base's hash, not hashed.
	asBase []bool
	reused []reusedLeaf
}

// reusedLeaf is the base's leaf, when the pages of a leaf are the base's.
type reusedLeaf struct {
	hash [32]byte
	ok   bool
}

// pagePrint is a fingerprint of one page: its GMAC (the GHASH of AES-GCM,
// with the page as additional data) under a key drawn at random once per
// process and never shown. For two different pages chosen without knowing
// the key, the chance that their prints are equal is at most
// (bytes/16+1)/2^128, about 2^-120 for 4 KiB pages: GHASH is
// almost-xor-universal. It costs about a quarter of a SHA-256 of the same
// bytes on the benchmark machine (6 against 1.9 GB/s).
type pagePrint [16]byte

// printGCM is the AES-GCM instance printPage uses, keyed once per process.
var printGCM = sync.OnceValue(func() cipher.AEAD {
	key := make([]byte, 16)
	_, _ = rand.Read(key) // crypto/rand.Read never fails
	b, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return g
})

// hashPage is a page's SHA-256, its key in the store. Tests count its
// calls.
var hashPage = func(data []byte) [32]byte { return sha256.Sum256(data) }

// printPage fingerprints a page. Tests replace it to force a collision
// and show that Verify catches what it then misses.
var printPage = func(data []byte) (p pagePrint) {
	var nonce [12]byte // one key, never shown, so no tag to forge: a fixed nonce is fine
	printGCM().Seal(p[:0], nonce[:], nil, data)
	return p
}

// Capture takes a consistent point-in-time image of the live WAL-mode
// database at path without blocking its writers, stores it deduplicated in
// st, and returns only once all of it is durable.
//
// It opens its own connection and reads every page inside one read
// transaction: in WAL mode that transaction sees the database as of its
// start, WAL frames included, while writers go on appending to the WAL.
// Pages that the WAL may hold are read through sqlite_dbpage, the others
// straight from the database file, which is several times cheaper (see
// walPages for why that is the same page). Reading runs in its own
// goroutine while pages are hashed and packs are written, so the capture
// costs about the slowest of the three rather than their sum.
//
// The read transaction keeps checkpoints from copying frames past its
// view into the database file, so the WAL grows by what writers commit
// meanwhile; it does not block them. The connection is query-only and its
// busy handler only ever waits for itself (to start the read), never makes
// a writer wait.
func Capture(ctx context.Context, path string, st *snapstore.Store, progress Progress) (Image, error) {
	return CaptureWithBase(ctx, path, st, "", progress)
}

// CaptureWithBase is Capture with the root of the previous snapshot of the
// same database as its base: a page new to the store that differs from the
// base's page at the same number is stored as a small delta against it, so
// a capture after a few rows changed stores about those rows rather than
// their whole pages. An empty baseRoot, or one that cannot be read, stores
// whole pages.
func CaptureWithBase(ctx context.Context, path string, st *snapstore.Store, baseRoot string, progress Progress) (Image, error) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Image{}, &snapdeck.Error{Code: snapdeck.NotFound, Message: "the database file does not exist", Err: err}
		}
		return Image{}, fmt.Errorf("capture: %w", err)
	}
	// Nothing committed since the last capture, which was the base: the
	// image is the same, and reading and hashing every page again only
	// to find that out took 0.8 × a copy of the file.
	before, known := stateOf(path)
	if known && baseRoot != "" {
		if img, ok := unchangedSince(st, path, baseRoot, before); ok {
			if progress != nil {
				progress(img.Size, img.Size)
			}
			return img, nil
		}
		// A replaced file kept for its safety snapshot whose size and
		// time say it may hold the base image: proven by its SHA-256,
		// which costs one pass over the file instead of a capture's
		// two hashes and its store lookups.
		if img, ok := keptCandidate(st, path, baseRoot, before); ok {
			same, err := holdsImage(ctx, path, img, progress)
			if err != nil {
				return Image{}, fmt.Errorf("capture: %w", err)
			}
			if same {
				fault("capture:kept-unchanged")
				return img, nil
			}
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		return Image{}, fmt.Errorf("capture: open %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	// Join the store before opening the read transaction: a sweep in
	// progress delays the writer, and the database's WAL should not grow
	// behind an idle read transaction meanwhile.
	w, err := st.NewWriter(ctx)
	if err != nil {
		return Image{}, fmt.Errorf("capture: %w", err)
	}
	defer w.Abort()
	if baseRoot != "" {
		// Before the read transaction, which this walk of the base's
		// tree need not hold open.
		w.UseBase(baseRoot)
	}
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Image{}, fmt.Errorf("capture: begin read: %w", err)
	}
	defer tx.Rollback()
	// This first read fixes the transaction's view of the database; the
	// page scan below sees exactly these pages.
	var pageSize int
	var pages int64
	if err := tx.QueryRowContext(ctx, "SELECT page_count FROM pragma_page_count()").Scan(&pages); err != nil {
		return Image{}, fmt.Errorf("capture: page count: %w", err)
	}
	if err := tx.QueryRowContext(ctx, "SELECT page_size FROM pragma_page_size()").Scan(&pageSize); err != nil {
		return Image{}, fmt.Errorf("capture: page size: %w", err)
	}
	total := pages * int64(pageSize)

	// Whole leaves per chunk, so that a leaf's pages are in one chunk.
	const leafPages = snapstore.LeafPages
	// The pages past the base's end are new to it, and most of them to
	// the store: the writer's set of pending pieces is sized for them
	// once. The first capture after a fill has the database's first
	// snapshot, of a few pages, as its base, and growing that set a page
	// at a time took about 7% of its CPU, on the goroutine adding pages.
	w.ExpectNew(expectNew(pages, int64(w.BaseLeaves())*leafPages))
	perChunk := (max(1, chunkBytes/pageSize) + leafPages - 1) / leafPages * leafPages
	// The fingerprints of the base's pages, when the last capture of this
	// file was the base and this process remembers it.
	basePrints := printsOf(st, path, baseRoot, pageSize)
	free := make(chan []byte, chunkBuffers)
	for range cap(free) {
		free <- make([]byte, 0, perChunk*pageSize)
	}
	chunks := make(chan []byte, cap(free)-1)
	var readErr error
	var readWG sync.WaitGroup
	readWG.Add(1)
	go func() {
		defer readWG.Done()
		defer close(chunks)
		readErr = readImage(ctx, tx, path, pageSize, pages, perChunk, free, chunks)
	}()

	// Three stages after the reader, over the machine's cores: page
	// hashes a chunk ahead of adding the pages to the store, the image
	// hash a chunk behind, which gives the buffers back to the reader.
	// None waits for another at every chunk. The page hashes run on two
	// goroutines, a chunk each, the image hash being the one stage that
	// cannot be split.
	//
	// Every page is fingerprinted (printPage). A page whose fingerprint
	// is the base's at the same index is the base's page, and is not
	// hashed; a leaf of such pages alone, as many as the base's leaf, is
	// the base's leaf. After 1% of the rows of a database changed, about
	// three leaves in four are the base's, and in the others one page in
	// 32: hashing the unchanged pages of those leaves took a sixth of the
	// capture's CPU.
	//
	// The two hashers take whole chunks, and the adder takes their
	// results in the image's order. Each chunk used to be split between
	// two goroutines, and the hasher waited for its other half at every
	// chunk: 0.44 s of waiting in the 1.5 s capture of a GiB after a
	// fill. Whole chunks took 1.36-1.48 s against 1.43-1.52 s, 4 pairs
	// alternated (docs/benchmarks.md, "s12-capture").
	type hashJob struct {
		data      []byte
		firstLeaf int
		done      chan hashedChunk
	}
	jobs := make(chan *hashJob, cap(free))
	order := make(chan *hashJob, cap(free))
	go func() {
		defer close(jobs)
		defer close(order)
		firstLeaf := 0
		for c := range chunks {
			j := &hashJob{data: c, firstLeaf: firstLeaf, done: make(chan hashedChunk, 1)}
			firstLeaf += (len(c)/pageSize + leafPages - 1) / leafPages
			order <- j
			jobs <- j
		}
	}()
	hashChunk := func(c []byte, firstLeaf int) hashedChunk {
		n := len(c) / pageSize
		leaves := (n + leafPages - 1) / leafPages
		hc := hashedChunk{data: c, hashes: make([][32]byte, n), prints: make([]pagePrint, n), asBase: make([]bool, n), reused: make([]reusedLeaf, leaves)}
		for j := range leaves {
			lo, hi := j*leafPages, min((j+1)*leafPages, n)
			first := (firstLeaf + j) * leafPages // the image's index of page lo
			same := 0
			for i := lo; i < hi; i++ {
				hc.prints[i] = printPage(c[i*pageSize : (i+1)*pageSize])
				if k := first + i - lo; k < len(basePrints) && basePrints[k] == hc.prints[i] {
					hc.asBase[i] = true
					same++
				}
			}
			baseLen := min(leafPages, len(basePrints)-first)
			if same == hi-lo && baseLen == hi-lo {
				if h, ok := w.BaseLeaf(firstLeaf + j); ok {
					hc.reused[j] = reusedLeaf{hash: h, ok: true}
					continue
				}
			}
			for i := lo; i < hi; i++ {
				if !hc.asBase[i] {
					hc.hashes[i] = hashPage(c[i*pageSize : (i+1)*pageSize])
				}
			}
		}
		return hc
	}
	for range 2 {
		go func() {
			for j := range jobs {
				j.done <- hashChunk(j.data, j.firstLeaf)
			}
		}()
	}
	image := sha256.New()
	imageIn := make(chan []byte, cap(free))
	imageDone := make(chan struct{})
	go func() {
		defer close(imageDone)
		for b := range imageIn {
			image.Write(b)
			free <- b[:0]
		}
	}()

	var done int64
	var addErr error
	// The fingerprints are kept for the next capture, unless this image's
	// alone are over their budget: a GiB of pages has 4 MiB of them.
	keepPrints := pages*int64(len(pagePrint{})) <= maxPrintBytes
	var prints []pagePrint
	if keepPrints {
		prints = make([]pagePrint, 0, pages)
	}
	for j := range order {
		c := <-j.done
		if addErr == nil {
			n := len(c.data) / pageSize
			for j, r := range c.reused {
				lo, hi := j*leafPages, min((j+1)*leafPages, n)
				if r.ok {
					addErr = w.AddLeaf(r.hash, hi-lo)
				}
				for i := lo; i < hi && !r.ok && addErr == nil; i++ {
					page := c.data[i*pageSize : (i+1)*pageSize]
					if c.asBase[i] {
						addErr = w.AddBasePage(page)
					} else {
						addErr = w.AddPage(c.hashes[i], page)
					}
				}
				if addErr != nil {
					break
				}
			}
			if keepPrints {
				prints = append(prints, c.prints...)
			}
			runtime.Gosched() // as in readPages: let other goroutines in
			done += int64(len(c.data))
			if progress != nil {
				progress(done, total)
			}
		}
		if addErr != nil {
			cancel() // stop the reader; keep draining so it can exit
		}
		imageIn <- c.data
	}
	close(imageIn)
	<-imageDone
	readWG.Wait()
	if addErr != nil {
		return Image{}, fmt.Errorf("capture: %w", addErr)
	}
	if readErr != nil {
		return Image{}, fmt.Errorf("capture: %w", readErr)
	}
	// The read transaction can end now: everything is in memory or packs.
	tx.Rollback()
	catchUpCheckpoint(ctx, db)
	fault("capture:read-done")

	var sum [32]byte
	image.Sum(sum[:0])
	m := snapstore.Manifest{PageSize: pageSize, Pages: pages, Size: total, SHA256: sum}
	root, added, err := w.Finish(m)
	if err != nil {
		return Image{}, fmt.Errorf("capture: %w", err)
	}
	img := Image{Root: root, Size: total, SHA256: hex.EncodeToString(sum[:]), PageSize: pageSize, Pages: pages, NewBytes: added}
	// The fingerprints describe img whatever happened meanwhile; the state
	// is remembered only if nothing was committed from before the read
	// transaction began until now: then the image is the state "before".
	c := captured{img: img, prints: prints}
	if after, ok := stateOf(path); known && ok && before.same(after) {
		c.state, c.offline = before, offlineState(path)
	}
	rememberCapture(st, path, c)
	return img, nil
}

// expectNew is how many new pieces a capture of pages pages whose base
// lists at most basePages expects: the pages past the base's end and
// their leaves, capped (4 GiB of 4 KiB pages, about 40 MiB), since pages
// the store already holds leave it unused. Within the base's pages, most
// are the base's own, so none are expected there.
func expectNew(pages, basePages int64) int {
	n := max(pages-basePages, 0)
	return int(min(n+n/snapstore.LeafPages, 1<<20))
}

// captures remembers, per store and database file, the last image Capture
// took and the file's state then.
var captures struct {
	mu sync.Mutex
	m  map[captureKey]captured
	// printBytes is the size of every entry's prints; next numbers the
	// captures, oldest first.
	printBytes int64
	next       uint64
}

// maxPrintBytes bounds the fingerprints remembered for all database files
// together: 16 bytes a page, 4 MiB per GiB, so 256 MiB covers 64 GiB of
// databases. Past it, the prints of the files captured longest ago are
// dropped, and their next capture hashes every page, as after a restart.
var maxPrintBytes int64 = 256 << 20

type captureKey struct {
	st   *snapstore.Store
	path string
}

type captured struct {
	// state is the file's state when the capture began, if nothing was
	// committed until it ended; else the zero state, the same as none.
	state fileState
	// offline is the file's size and time at the end of the capture: a
	// hint, never a proof, that a file offline since then (no -wal, no
	// -shm) still holds img. Only kept files (InstallKeeping) use it.
	offline fileState
	// kept says the file is a replaced file that InstallKeeping kept,
	// which nothing opens but its safety snapshot's capture.
	kept bool
	img  Image
	// prints are the fingerprints of img's pages, in order.
	prints []pagePrint
	// seq orders the captures remembered, oldest first.
	seq uint64
}

// printSize is the memory c's prints take.
func (c captured) printSize() int64 { return int64(len(c.prints)) * int64(len(pagePrint{})) }

// printsOf returns the page fingerprints of the image last captured from
// path into st, one per page, if that image is baseRoot with pages of
// pageSize bytes.
func printsOf(st *snapstore.Store, path, baseRoot string, pageSize int) []pagePrint {
	if baseRoot == "" {
		return nil
	}
	captures.mu.Lock()
	defer captures.mu.Unlock()
	c, ok := captures.m[captureKey{st, path}]
	if !ok || c.img.Root != baseRoot || c.img.PageSize != pageSize || int64(len(c.prints)) != c.img.Pages {
		return nil
	}
	return c.prints
}

func rememberCapture(st *snapstore.Store, path string, c captured) {
	captures.mu.Lock()
	defer captures.mu.Unlock()
	if captures.m == nil {
		captures.m = make(map[captureKey]captured)
	}
	k := captureKey{st, path}
	if old, ok := captures.m[k]; ok {
		captures.printBytes -= old.printSize()
	}
	captures.next++
	c.seq = captures.next
	captures.m[k] = c
	captures.printBytes += c.printSize()
	for captures.printBytes > maxPrintBytes {
		var oldest captureKey
		found := false
		for k, c := range captures.m {
			if len(c.prints) > 0 && (!found || c.seq < captures.m[oldest].seq) {
				oldest, found = k, true
			}
		}
		if !found {
			break
		}
		c := captures.m[oldest]
		captures.printBytes -= c.printSize()
		c.prints = nil
		captures.m[oldest] = c
	}
}

// unchangedSince returns the image last captured from path into st if it
// is the base and the file is still in the state it was captured in.
func unchangedSince(st *snapstore.Store, path, baseRoot string, now fileState) (Image, bool) {
	captures.mu.Lock()
	defer captures.mu.Unlock()
	c, ok := captures.m[captureKey{st, path}]
	if !ok || c.kept || c.img.Root != baseRoot || !c.state.same(now) {
		return Image{}, false
	}
	img := c.img
	img.NewBytes = 0
	return img, true
}

// keptCandidate returns the image last captured into st from the file
// that InstallKeeping kept at path, if it is the base and the file's size
// and modification time are still those it had at the end of that
// capture. That is only a hint: a write in the same clock tick as the
// last one before it leaves the time as it was, so the caller must check
// the file's content (holdsImage) before it takes the image.
//
// While a connection had the database open, every commit went to the WAL,
// and the WAL is gone only once a checkpoint has copied its frames into
// the file, which writes the file and so sets its time.
func keptCandidate(st *snapstore.Store, path, baseRoot string, now fileState) (Image, bool) {
	captures.mu.Lock()
	defer captures.mu.Unlock()
	c, ok := captures.m[captureKey{st, path}]
	if !ok || !c.kept || c.img.Root != baseRoot || now.shm || !c.offline.same(now) {
		return Image{}, false
	}
	img := c.img
	img.NewBytes = 0
	return img, true
}

// offlineState is the state stateOf gives for the file at path once no
// connection has it open: its identity, size and modification time.
func offlineState(path string) fileState {
	fi, err := os.Stat(path)
	if err != nil {
		return fileState{}
	}
	return fileState{file: fi, size: fi.Size(), modTime: fi.ModTime().UnixNano()}
}

// keepCaptures moves what is remembered of the database file at dbPath to
// keptPath, its second name given by InstallKeeping, and marks it kept.
func keepCaptures(dbPath, keptPath string) {
	captures.mu.Lock()
	defer captures.mu.Unlock()
	for k, c := range captures.m {
		if k.path == dbPath {
			delete(captures.m, k)
			c.kept = true
			to := captureKey{k.st, keptPath}
			if old, ok := captures.m[to]; ok {
				captures.printBytes -= old.printSize()
			}
			captures.m[to] = c
		}
	}
}

// forgetCaptures drops what is remembered of the file at path.
func forgetCaptures(path string) {
	captures.mu.Lock()
	defer captures.mu.Unlock()
	for k, c := range captures.m {
		if k.path == path {
			captures.printBytes -= c.printSize()
			delete(captures.m, k)
		}
	}
}

// holdsImage reports whether the file at path is byte for byte img, by its
// size and SHA-256. The file is read a chunk ahead of the hash, on its own
// goroutine.
func holdsImage(ctx context.Context, path string, img Image, progress Progress) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.Size() != img.Size {
		return false, err
	}
	free := make(chan []byte, 3)
	for range cap(free) {
		free <- make([]byte, chunkBytes)
	}
	full := make(chan []byte, cap(free))
	var readErr error
	go func() {
		defer close(full)
		for off := int64(0); off < img.Size; {
			var buf []byte
			select {
			case buf = <-free:
			case <-ctx.Done():
				readErr = ctx.Err()
				return
			}
			n, err := f.ReadAt(buf[:min(int64(len(buf)), img.Size-off)], off)
			if err != nil {
				readErr = fmt.Errorf("read %s: %w", path, err)
				return
			}
			off += int64(n)
			full <- buf[:n]
		}
	}()
	h := sha256.New()
	var done int64
	for b := range full {
		h.Write(b)
		done += int64(len(b))
		free <- b[:cap(b)]
		if progress != nil {
			progress(done, img.Size)
		}
	}
	if readErr != nil {
		return false, readErr
	}
	return hex.EncodeToString(h.Sum(nil)) == img.SHA256, nil
}

// maxWALShare is the share of the pages above which Capture reads every
// page through sqlite_dbpage instead of the database file: each page the
// WAL may hold costs a query of its own, and when most pages are in the WAL
// one scan is cheaper.
var maxWALShare = 0.25

// readImage sends the pages of the transaction's view, perChunk at a time,
// in page order: from the database file where that is the same page, else
// through SQLite.
func readImage(ctx context.Context, tx *sql.Tx, path string, pageSize int, pages int64, perChunk int, free chan []byte, out chan<- []byte) error {
	inWAL, n, ok, err := walIndexPages(path, pageSize, pages)
	if err == nil && !ok {
		inWAL, n, ok, err = walPages(path, pageSize, pages)
	}
	if err != nil {
		return fmt.Errorf("read WAL: %w", err)
	}
	if !ok || float64(n) > maxWALShare*float64(pages) {
		return readPages(ctx, tx, pageSize, pages, perChunk, free, out)
	}
	f, err := dbFile(path)
	if err != nil {
		return fmt.Errorf("read pages: %w", err)
	}
	stmt, err := tx.PrepareContext(ctx, "SELECT data FROM sqlite_dbpage WHERE pgno = ?")
	if err != nil {
		return fmt.Errorf("read pages: %w", err)
	}
	defer stmt.Close()
	ps := int64(pageSize)
	for first := int64(1); first <= pages; first += int64(perChunk) {
		n := min(int64(perChunk), pages-first+1)
		var buf []byte
		select {
		case buf = <-free:
		case <-ctx.Done():
			return ctx.Err()
		}
		buf = buf[:n*ps]
		got, err := f.ReadAt(buf, (first-1)*ps)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read pages %d-%d: %w", first, first+n-1, err)
		}
		for i := range n {
			// A page past the end of the file can only be in the WAL.
			if !inWAL.has(first+i) && (i+1)*ps <= int64(got) {
				continue
			}
			var data []byte
			if err := stmt.QueryRowContext(ctx, first+i).Scan(&data); err != nil {
				return fmt.Errorf("read page %d: %w", first+i, err)
			}
			if len(data) != pageSize {
				return fmt.Errorf("read pages: got page %d of %d bytes, want %d", first+i, len(data), pageSize)
			}
			copy(buf[i*ps:], data)
		}
		if first == 1 {
			if err := checkHeader(buf, pages); err != nil {
				return err
			}
		}
		out <- buf
		runtime.Gosched() // as in readPages
	}
	return nil
}

// checkHeader checks that the page count in page 1's header, when valid,
// agrees with the transaction's view, or the read did not see one snapshot.
func checkHeader(page1 []byte, pages int64) error {
	hdr := int64(binary.BigEndian.Uint32(page1[28:]))
	if binary.BigEndian.Uint32(page1[24:]) == binary.BigEndian.Uint32(page1[92:]) && hdr != pages {
		return fmt.Errorf("read pages: header says %d pages, transaction %d", hdr, pages)
	}
	return nil
}

// readPages scans sqlite_dbpage in the open read transaction and sends
// whole pages, perChunk at a time, in page order.
func readPages(ctx context.Context, tx *sql.Tx, pageSize int, pages int64, perChunk int, free chan []byte, out chan<- []byte) error {
	rows, err := tx.QueryContext(ctx, "SELECT pgno, data FROM sqlite_dbpage")
	if err != nil {
		return fmt.Errorf("read pages: %w", err)
	}
	defer rows.Close()
	var want int64 = 1
	var buf []byte
	for rows.Next() {
		var pgno int64
		var data sql.RawBytes
		if err := rows.Scan(&pgno, &data); err != nil {
			return fmt.Errorf("read page %d: %w", want, err)
		}
		if pgno != want || len(data) != pageSize {
			return fmt.Errorf("read pages: got page %d of %d bytes, want page %d of %d", pgno, len(data), want, pageSize)
		}
		if pgno == 1 {
			if err := checkHeader(data, pages); err != nil {
				return err
			}
		}
		if buf == nil {
			select {
			case buf = <-free:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		buf = append(buf, data...)
		want++
		if len(buf) == perChunk*pageSize {
			out <- buf
			buf = nil
			// Capture keeps both cores of a small machine busy; yield
			// each chunk so that the console's own goroutines (a
			// writer's commit) wait a fraction of a millisecond for a
			// core rather than a 10 ms preemption slice.
			runtime.Gosched()
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read pages: %w", err)
	}
	if buf != nil {
		out <- buf
	}
	if want-1 != pages {
		return fmt.Errorf("read pages: got %d pages, want %d", want-1, pages)
	}
	return nil
}

// catchUpCheckpoint copies into the database file the WAL frames that
// writers committed while the capture's read transaction kept them from
// being checkpointed. Left to them, the writer whose commit next crosses
// the autocheckpoint threshold copies the whole backlog inside its commit:
// on the benchmark machine that commit took 60-170 ms after a capture of
// 1 GiB under a busy writer, against under 20 ms for any other. A passive
// checkpoint takes no lock that writers wait for; if a writer's own
// checkpoint got there first this one returns at once, and a failure only
// leaves the work to them, so it is not an error.
func catchUpCheckpoint(ctx context.Context, db *sql.DB) {
	var busy, frames, copied int
	_ = db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
}
