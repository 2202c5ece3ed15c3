package snapstore

import (
	"math/bits"
	"sync"
)

// A scratch hands out the buffers that one batch of a read lands in and
// takes them all back at once, when the batch has been used. A restore
// reads a GiB through a few MiB of buffers this way: allocating each range
// afresh cost more CPU (in zeroing new memory) than the pread that filled
// it. A nil *scratch allocates, for reads whose pieces outlive the call.
type scratch struct {
	bufs [][]byte
}

// Buffers come in power-of-two classes from 4 KiB (one page) to 4 MiB (a
// batch of pages plus the gaps read with them); larger ranges are
// allocated and left to the garbage collector.
const (
	minClassShift = 12
	maxClassShift = 22
)

var bufPools [maxClassShift - minClassShift + 1]sync.Pool

// get returns a buffer of n bytes, its contents undefined.
func (sc *scratch) get(n int) []byte {
	if sc == nil {
		return make([]byte, n)
	}
	shift := max(minClassShift, bits.Len(uint(max(n, 1)-1)))
	if shift > maxClassShift {
		return make([]byte, n)
	}
	var b []byte
	if p, ok := bufPools[shift-minClassShift].Get().(*[]byte); ok {
		b = *p
	} else {
		b = make([]byte, 1<<shift)
	}
	sc.bufs = append(sc.bufs, b)
	return b[:n]
}

// release returns every buffer get handed out; none may be used after.
func (sc *scratch) release() {
	if sc == nil {
		return
	}
	for _, b := range sc.bufs {
		b = b[:cap(b)]
		shift := bits.Len(uint(len(b) - 1))
		bufPools[shift-minClassShift].Put(&b)
	}
	sc.bufs = sc.bufs[:0]
}
