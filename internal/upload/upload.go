package upload

import (
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// upload is one resumable upload and its state machine: receiving, then
// checking, then loading (or failed), and loaded or failed as its load
// job ends.
type upload struct {
	// mu is held by the request writing a chunk or checking the file;
	// state guards the fields a status request reads meanwhile.
	mu         sync.Mutex
	state      sync.Mutex
	id, dbID   string
	name       string
	size       int64
	sha256     string
	overwrite  bool
	actor      string
	path       string
	received   int64
	sum        hash.Hash
	status     string
	jobID      string
	message    string
	lastActive time.Time
}

// set changes the fields a status request reads.
func (u *upload) set(change func()) {
	u.state.Lock()
	defer u.state.Unlock()
	change()
}

// reply is the upload object as it stands, before its load job is asked.
func (u *upload) reply() Reply {
	u.state.Lock()
	defer u.state.Unlock()
	return Reply{UploadID: u.id, InstanceID: u.dbID, Filename: u.name, Size: u.size, Received: u.received,
		SHA256: u.sha256, Status: u.status, JobID: u.jobID, Error: u.message}
}

// append writes body, a chunk of length bytes, at the end of the upload's
// file, hashing what was written; u.mu is held. What arrived before an
// interruption is kept, to resume from; a body that ends early or runs
// past length is taken back whole, as the client sent something else than
// it said.
func (u *upload) append(body io.Reader, length int64) error {
	f, err := os.OpenFile(u.path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(u.received, io.SeekStart); err != nil {
		return err
	}
	from := u.received
	before, err := u.sum.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	takeBack := func(got int64) error {
		if err := f.Truncate(from); err != nil {
			return err
		}
		if err := u.sum.(encoding.BinaryUnmarshaler).UnmarshalBinary(before); err != nil {
			return err
		}
		u.set(func() { u.received = from })
		return errChunkLength(got, length)
	}
	// At most length bytes are written; one more byte read from body
	// afterwards tells a body longer than its range.
	chunk := &io.LimitedReader{R: body, N: length}
	buf := make([]byte, 1<<20)
	for {
		n, rerr := chunk.Read(buf)
		if n > 0 {
			if _, err := f.Write(buf[:n]); err != nil {
				// The file may hold part of this read: cut it back to what
				// is hashed, so a resume continues from consistent bytes.
				f.Truncate(u.received)
				return err
			}
			u.sum.Write(buf[:n])
			u.set(func() { u.received += int64(n) })
		}
		if errors.Is(rerr, io.EOF) && chunk.N == 0 {
			var extra [1]byte
			n, rerr = io.ReadFull(body, extra[:])
			switch {
			case n > 0:
				return takeBack(-1)
			case errors.Is(rerr, io.EOF):
				return nil
			}
		}
		switch {
		case errors.Is(rerr, io.EOF):
			return takeBack(u.received - from)
		case rerr != nil:
			return &snapdeck.Error{Code: snapdeck.Invalid, Reason: "upload-interrupted", Err: rerr,
				Message: fmt.Sprintf("The chunk stopped arriving; the console has %d bytes. Resume from there.", u.received)}
		}
	}
}

// errChunkLength refuses a chunk whose body is not as long as its
// Content-Range says; got is negative when the body was longer.
func errChunkLength(got, want int64) error {
	size := fmt.Sprintf("%d bytes, not", got)
	if got < 0 {
		size = "longer than"
	}
	return &snapdeck.Error{Code: snapdeck.Invalid, Reason: "invalid-request", Field: HeaderContentRange,
		Message: fmt.Sprintf("The chunk's body is %s the %d bytes its Content-Range announces; nothing was written.", size, want)}
}
