package upload

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// Client calls a console's import extension, as push-to-cloud does: one
// method per request, no retries (the caller decides what is worth
// another try, from APIError).
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
