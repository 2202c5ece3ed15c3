package dump

import (
	"errors"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// frameSize is how much of the archive goes into each zstd frame. Frames
// are independent, so each starts with an empty history; at 4 MiB (four
// windows) that costs 0.1% of ratio, and the frames in flight stay near
// 30 MiB per export.
const frameSize = 4 << 20

// frameWorkers is how many frames are compressed at once, like `zstd -T2`.
const frameWorkers = 2

// framesQueued is how many frames may wait for their turn to be written
// behind the one being written; with the one being filled it bounds the
// memory of an export to (framesQueued+2) frames and their compressed forms.
const framesQueued = frameWorkers

// errAborted is what Write answers once the dump has been abandoned.
var errAborted = errors.New("dump: output abandoned")

// frameWriter compresses what is written to it as a sequence of independent
// zstd frames, frameWorkers at a time, and writes them to w in order. RFC
// 8878 makes a stream of concatenated frames one zstd stream, which every
// decoder reads, `tar --zstd` included.
//
// Independent frames cost less CPU than klauspost's parallel mode for a
// single frame, which compresses an overlap of each job's predecessor again
// to keep matches across jobs: on an overloaded 2-core machine a dump's
// speed is its CPU time per byte.
//
// The frame being filled is compressed only once more data follows it or on
// Close, so when a dump fails (abort), the last bytes written to frameWriter
// never reach w and the output reads as truncated to every tool.
type frameWriter struct {
	w    io.Writer
	enc  *zstd.Encoder
	size int

	cur   *frame      // being filled
	work  chan *frame // to the compressing goroutines
	order chan *frame // to the writing goroutine, in stream order
	wg    sync.WaitGroup

	mu      sync.Mutex
	err     error // the first error writing to w, or errAborted
	written chan struct{}
}

// frame is one chunk of the archive and, once done is closed, its
// compressed form.
type frame struct {
	src, dst []byte
	done     chan struct{}
}

// frames recycles frame buffers across dumps.
var frames = sync.Pool{New: func() any { return new(frame) }}

// newFrameWriter starts the goroutines of a frameWriter that puts size bytes
// in each frame. Close or abort must be called to stop them.
func newFrameWriter(w io.Writer, enc *zstd.Encoder, size int) *frameWriter {
	fw := &frameWriter{
		w: w, enc: enc, size: size,
		work:    make(chan *frame, frameWorkers),
		order:   make(chan *frame, framesQueued),
		written: make(chan struct{}),
	}
	for range frameWorkers {
		fw.wg.Add(1)
		go func() {
			defer fw.wg.Done()
			for f := range fw.work {
				// An abandoned dump's frames would be dropped unwritten.
				if fw.failed() == nil {
					f.dst = fw.enc.EncodeAll(f.src, f.dst[:0])
				}
				close(f.done)
			}
		}()
	}
	go fw.writeFrames()
	return fw
}

// writeFrames writes the compressed frames in order. After an error it goes
// on taking frames, so that the producer never blocks, but writes none.
func (fw *frameWriter) writeFrames() {
	defer close(fw.written)
	for f := range fw.order {
		<-f.done
		if fw.failed() == nil {
			if _, err := fw.w.Write(f.dst); err != nil {
				fw.setErr(err)
			}
		}
		f.src, f.dst = f.src[:0], f.dst[:0]
		frames.Put(f)
	}
}

// Write copies p into frames, handing each full frame to the compressors
// once more data follows it.
func (fw *frameWriter) Write(p []byte) (int, error) {
	if err := fw.failed(); err != nil {
		return 0, err
	}
	n := 0
	for len(p) > 0 {
		if fw.cur == nil {
			fw.cur = frames.Get().(*frame)
			if cap(fw.cur.src) < fw.size {
				fw.cur.src = make([]byte, 0, fw.size)
			}
		} else if len(fw.cur.src) == fw.size {
			fw.submit()
			continue
		}
		c := copy(fw.cur.src[len(fw.cur.src):fw.size], p)
		fw.cur.src = fw.cur.src[:len(fw.cur.src)+c]
		p = p[c:]
		n += c
	}
	return n, nil
}

// submit queues the current frame for compression and writing.
func (fw *frameWriter) submit() {
	f := fw.cur
	fw.cur = nil
	f.done = make(chan struct{})
	// Queued for writing first: the writer then waits for this frame
	// before any later one, whichever worker finishes first.
	fw.order <- f
	fw.work <- f
}

// Close compresses and writes what is left, waits for the goroutines and
// returns the first error writing to w.
func (fw *frameWriter) Close() error {
	if fw.cur != nil && len(fw.cur.src) > 0 {
		fw.submit()
	}
	fw.stop()
	return fw.failed()
}

// abort abandons the stream: the frame being filled and those not yet
// written are dropped, and nothing more reaches w once abort returns.
func (fw *frameWriter) abort() {
	fw.setErr(errAborted)
	fw.stop()
}

// stop ends the goroutines and waits for them.
func (fw *frameWriter) stop() {
	if fw.cur != nil {
		fw.cur.src = fw.cur.src[:0]
		frames.Put(fw.cur)
		fw.cur = nil
	}
	close(fw.work)
	close(fw.order)
	fw.wg.Wait()
	<-fw.written
}

func (fw *frameWriter) failed() error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return fw.err
}

func (fw *frameWriter) setErr(err error) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.err == nil {
		fw.err = err
	}
}
