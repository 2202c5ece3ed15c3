package upload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Client calls a console's import extension, as push-to-cloud does: one
// method per request, and Send and Wait for a whole upload. The caller
// decides what is worth another try (from APIError) and renews Token.
type Client struct {
	// HTTP sends the requests.
	HTTP *http.Client
	// URL is the console's address, without a trailing slash.
	URL string
	// Token is the access token sent as a bearer token; the caller renews
	// it when it expires.
	Token string
	// UserAgent names the client in the console's log.
	UserAgent string
}

// APIError is an error answer of the API: its status, and the first error
// of its body.
type APIError struct {
	Status  int         `json:"-"`
	Message string      `json:"message"`
	Reason  string      `json:"reason"`
	Header  http.Header `json:"-"`
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("the console answered %d", e.Status)
	}
	return e.Message
}

// Transient reports whether retrying may help: the console was busy or
// failed, not the request.
func (e *APIError) Transient() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// Announce starts an upload into database dbID.
func (c *Client) Announce(ctx context.Context, dbID string, a Announce) (Reply, error) {
	return c.call(ctx, http.MethodPost, Path(dbID), a.Header(), nil)
}

// PutChunk sends the bytes of rng, read from body, of upload uploadID.
func (c *Client) PutChunk(ctx context.Context, dbID, uploadID string, rng ContentRange, body io.Reader) (Reply, error) {
	h := http.Header{}
	h.Set(HeaderContentRange, rng.String())
	h.Set("Content-Type", "application/octet-stream")
	return c.call(ctx, http.MethodPut, UploadPath(dbID, uploadID), h, body)
}

// Status asks how upload uploadID stands: the bytes received, the load.
func (c *Client) Status(ctx context.Context, dbID, uploadID string) (Reply, error) {
	return c.call(ctx, http.MethodGet, UploadPath(dbID, uploadID), nil, nil)
}

// call sends one request and decodes the upload object it answers.
// Network failures come back as they are; error answers as *APIError.
func (c *Client) call(ctx context.Context, method, path string, header http.Header, body io.Reader) (Reply, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, body)
	if err != nil {
		return Reply{}, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		return Reply{}, err
	}
	defer res.Body.Close()
	// The upload object and error bodies are small; a megabyte bounds
	// what a wrong server could make us hold.
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return Reply{}, err
	}
	if res.StatusCode >= 400 {
		var env struct {
			Errors []APIError `json:"errors"`
		}
		e := &APIError{Status: res.StatusCode, Header: res.Header}
		if json.Unmarshal(b, &env) == nil && len(env.Errors) > 0 {
			e.Message, e.Reason = env.Errors[0].Message, env.Errors[0].Reason
		}
		return Reply{}, e
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return Reply{}, fmt.Errorf("%s %s: the answer is not JSON: %w", method, path, err)
	}
	var r Reply
	if err := json.Unmarshal(env.Data, &r); err != nil {
		return Reply{}, fmt.Errorf("%s %s: unexpected answer: %w", method, path, err)
	}
	return r, nil
}

// maxRestarts is how often Send starts over when the console forgot the
// upload: a restart of the console is worth another try or two, a
// console that keeps forgetting is not.
const maxRestarts = 2

// SendOptions say how Send sends a file.
type SendOptions struct {
	// ChunkSize is the bytes sent per request, at most MaxChunk.
	ChunkSize int64
	// Retry runs op until it succeeds or fails for good; what names the
	// step for messages. Nil runs op once.
	Retry func(what string, op func() error) error
	// Progress, when set, is told the bytes the console has.
	Progress func(received int64)
	// Restarted, when set, is told that the console forgot the upload
	// (it restarted) and Send starts it over.
	Restarted func()
}

// Send announces a file of a.Size bytes, read from file, into database
// dbID, and sends it in chunks. After a failed chunk it asks the console
// what arrived and resumes from there; when the console forgot the upload
// it starts over, twice at most. It returns the upload once every byte
// arrived: its status is then loading (Wait for the load), or failed. An
// error answer comes back as *APIError.
func (c *Client) Send(ctx context.Context, dbID string, file io.ReaderAt, a Announce, o SendOptions) (Reply, error) {
	retry := o.Retry
	if retry == nil {
		retry = func(_ string, op func() error) error { return op() }
	}
	var up Reply
	announce := func() error {
		return retry("start the upload", func() error {
			r, err := c.Announce(ctx, dbID, a)
			if err == nil {
				up = r
			}
			return err
		})
	}
	if err := announce(); err != nil {
		return up, err
	}
	restarts := 0
	for up.Status == StatusReceiving {
		if o.Progress != nil {
			o.Progress(up.Received)
		}
		err := retry("upload", func() error {
			n := min(o.ChunkSize, a.Size-up.Received)
			rng := ContentRange{Start: up.Received, End: up.Received + n - 1, Total: a.Size}
			r, err := c.PutChunk(ctx, dbID, up.UploadID, rng, io.NewSectionReader(file, up.Received, n))
			if err == nil {
				up = r
				return nil
			}
			var ae *APIError
			mismatch := errors.As(err, &ae) && ae.Reason == ReasonOffsetMismatch
			if ae != nil && !ae.Transient() && !mismatch {
				return err // refused for good
			}
			// Learn where to resume from: part of the chunk may have
			// arrived. If even that fails, back off and try again.
			r, serr := c.Status(ctx, dbID, up.UploadID)
			if serr != nil {
				var se *APIError
				if errors.As(serr, &se) && se.Reason == ReasonNotFound {
					return serr
				}
				return err
			}
			up = r
			if mismatch || up.Status != StatusReceiving {
				return nil
			}
			return err
		})
		var ae *APIError
		if errors.As(err, &ae) && ae.Reason == ReasonNotFound && restarts < maxRestarts {
			restarts++
			if o.Restarted != nil {
				o.Restarted()
			}
			if err := announce(); err != nil {
				return up, err
			}
			continue
		}
		if err != nil {
			return up, err
		}
	}
	if o.Progress != nil {
		o.Progress(a.Size)
	}
	return up, nil
}

// Wait asks how upload up stands every interval, through retry (nil: once
// each time), until its load ended: the reply's status is then loaded,
// with the Load snapshot, or failed, with the reason.
func (c *Client) Wait(ctx context.Context, dbID string, up Reply, interval time.Duration, retry func(what string, op func() error) error) (Reply, error) {
	if retry == nil {
		retry = func(_ string, op func() error) error { return op() }
	}
	for up.Status == StatusChecking || up.Status == StatusLoading {
		select {
		case <-time.After(interval):
		case <-ctx.Done():
			return up, ctx.Err()
		}
		if err := retry("check on the load", func() error {
			r, err := c.Status(ctx, dbID, up.UploadID)
			if err == nil {
				up = r
			}
			return err
		}); err != nil {
			return up, err
		}
	}
	return up, nil
}
