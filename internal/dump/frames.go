package dump

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// frameSize is how much of the archive goes into one zstd frame. Frames
// are compressed independently, so each starts without history: with the
// 1 MiB window, 4 MiB frames cost 0.2% of the size of a dump of orders
// (TestFramesKeepTheRatio), and two of them keep both cores busy.
const frameSize = 4 << 20

// firstFrameSize is the size of the first frame, and each next one is four
// times the one before up to frameSize: the download's first bytes wait
// for a frame to be read and compressed whole, and the export hands them
// over a MiB at a time.
const firstFrameSize = 256 << 10

// framesInFlight is how many frames one dump has handed to the encoder
// and not yet written out: two being compressed, one waiting to be written
// while the next is filled. With the one being filled, a dump holds at
// most four frames' input and output, about 32 MiB.
const framesInFlight = 3

// encoderOptions is how every frame is compressed: zstd's fastest level, as
// fast as `zstd -1`, with each frame's content checksum, and the 1 MiB
// window dumps have always been written with (readers accept up to 32 MiB).
// Two encoders compress two frames at once, the way `zstd -T2` does.
var encoderOptions = []zstd.EOption{
	zstd.WithEncoderLevel(zstd.SpeedFastest),
	zstd.WithEncoderConcurrency(2),
	zstd.WithWindowSize(1 << 20),
	zstd.WithEncoderCRC(true),
}

// frameEncoder compresses the frames of every dump. It is made once and
// kept: it holds two block encoders (their tables and history, about 3 MiB
// in all) that stay warm between exports. A fresh encoder compressed its
// first 4 MiB in 55-75 ms on the benchmark machine, later ones in a few,
// and every export paid it before its first byte. The two encoders are
// also the most CPU that compressing dumps takes at once, however many
// exports run.
var frameEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil, encoderOptions...)
})

// frameBuffers recycles the frames' input and output buffers across dumps.
// Output buffers are sized for the worst case (an incompressible frame
// stored raw) so that the encoder never grows them: growing them by append
// cost a third of the export's copying.
var frameBuffers = sync.Pool{New: func() any { return new(frameBuffer) }}

// frameBuffer is one frame's input and its compressed output.
type frameBuffer struct {
	in, out []byte
}

// frame is one frame on its way to the output.
type frame struct {
	buf  *frameBuffer
	err  error // set before done is closed
	done chan struct{}
}

// frameWriter compresses what is written to it into a stream of
// independent zstd frames, several at once, and writes them to w in order.
// RFC 8878 makes concatenated frames one stream: `zstd -d`, `tar --zstd`
// and Extract read it as they read one frame. Write and Close are called
// from one goroutine; writes to w happen in that goroutine too.
type frameWriter struct {
	w       io.Writer
	enc     *zstd.Encoder
	filling *frameBuffer
	size    int      // the frame being filled is cut at this size
	flight  []*frame // handed to the encoder, oldest first
	err     error    // the first failed write to w
}

// newFrameWriter returns a frameWriter writing to w.
func newFrameWriter(w io.Writer) (*frameWriter, error) {
	enc, err := frameEncoder()
	if err != nil {
		return nil, err
	}
	return &frameWriter{w: w, enc: enc, size: firstFrameSize}, nil
}

// Write compresses p, handing each frame to the encoder once it is full.
func (fw *frameWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if fw.err != nil {
			return n - len(p), fw.err
		}
		if fw.filling == nil {
			fw.filling = frameBuffers.Get().(*frameBuffer)
			fw.filling.in = fw.filling.in[:0]
		}
		in := fw.filling.in
		if cap(in) < fw.size {
			in = make([]byte, 0, frameSize)
		}
		k := min(len(p), fw.size-len(in))
		fw.filling.in = append(in, p[:k]...)
		p = p[k:]
		if len(fw.filling.in) == fw.size {
			fw.dispatch()
			fw.size = min(4*fw.size, frameSize)
		}
	}
	return n, fw.err
}

// dispatch hands the frame being filled to the encoder, after writing out
// the oldest one when as many as framesInFlight are under way.
func (fw *frameWriter) dispatch() {
	for len(fw.flight) >= framesInFlight {
		fw.writeOldest()
	}
	f := &frame{buf: fw.filling, done: make(chan struct{})}
	fw.filling = nil
	fw.flight = append(fw.flight, f)
	go func() {
		defer close(f.done)
		// EncodeAll panics on what it cannot encode, which only a bug in
		// it can cause: the export fails rather than the program.
		defer func() {
			if r := recover(); r != nil {
				f.err = fmt.Errorf("dump: compressing: %v", r)
			}
		}()
		b := f.buf
		if want := fw.enc.MaxEncodedSize(len(b.in)); cap(b.out) < want {
			b.out = make([]byte, 0, max(want, fw.enc.MaxEncodedSize(frameSize)))
		}
		b.out = fw.enc.EncodeAll(b.in, b.out[:0])
	}()
}

// writeOldest waits for the oldest frame under way and writes it to w,
// unless a write failed before.
func (fw *frameWriter) writeOldest() {
	f := fw.flight[0]
	fw.flight = fw.flight[1:]
	<-f.done
	if fw.err == nil && f.err != nil {
		fw.err = f.err
	}
	if fw.err == nil {
		if _, err := fw.w.Write(f.buf.out); err != nil {
			fw.err = err
		}
	}
	frameBuffers.Put(f.buf)
}

// Close compresses what is left and writes every frame out.
func (fw *frameWriter) Close() error {
	if fw.err != nil {
		fw.abandon()
		return fw.err
	}
	if fw.filling != nil && len(fw.filling.in) > 0 {
		fw.dispatch()
	} else if fw.filling != nil {
		frameBuffers.Put(fw.filling)
		fw.filling = nil
	}
	for len(fw.flight) > 0 {
		fw.writeOldest()
	}
	return fw.err
}

// abandon waits for the frames under way and drops them: nothing more is
// written to w.
func (fw *frameWriter) abandon() {
	if fw.err == nil {
		fw.err = errAbandoned
	}
	for len(fw.flight) > 0 {
		fw.writeOldest()
	}
	if fw.filling != nil {
		frameBuffers.Put(fw.filling)
		fw.filling = nil
	}
}

// errAbandoned is what a frameWriter answers once its dump has failed.
var errAbandoned = errors.New("dump: output abandoned")
