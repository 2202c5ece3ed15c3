// Package dataplane lets applications reach a hosted database over HTTP with
// libSQL's clients unchanged: Hrana over HTTP with JSON (SPEC §9,
// docs/HRANA_3_SPEC.md of tursodatabase/libsql). A stream is a lease of
// database.Host: the Query tab's guarded connection, kept across requests
// and revoked by Host before a restore, load, overwrite, pause or delete.
package dataplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/metrics"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// Grant is what a bearer token allows: one database, read-write or
// read-only.
type Grant struct {
	TokenID    string
	DatabaseID string
	ReadOnly   bool
}

// Leaser gives the guarded connections streams run on (database.Host).
type Leaser interface {
	Lease(ctx context.Context, id string, opts database.LeaseOptions) (*database.Lease, error)
}

// Config is what the data plane is built from.
type Config struct {
	Host Leaser
	// Authenticate checks a bearer token; its errors are snapdeck.Errors
	// with code Unauthorized.
	Authenticate func(ctx context.Context, bearer string) (Grant, error)
	// Status tells a database's lifecycle state; only a running database
	// serves statements.
	Status func(ctx context.Context, id string) (snapdeck.Status, error)
	// HTTPStatus maps an error code to the status of an answer that is
	// not a Hrana result (web's one mapping).
	HTTPStatus func(snapdeck.Code) int
	Metrics    *metrics.Metrics // nil counts nothing
	Logger     *slog.Logger
	// StatementTimeout interrupts a statement running longer: the Query
	// tab's limit (--query-timeout).
	StatementTimeout time.Duration
	// IdleTimeout ends a stream nobody used for that long; zero is 10 s.
	IdleTimeout time.Duration
	// MaxBodyBytes bounds a request body; zero is 8 MiB.
	MaxBodyBytes int64
	// MaxResultBytes bounds the values one response carries; zero is 8 MiB.
	MaxResultBytes int
}

const (
	// defaultIdleTimeout is sqld's: a client's requests on a stream come
	// back to back (it waits only for the previous answer), so 10 s of
	// silence means it went away, and until then its lease holds a
	// connection, maybe a write lock, that others wait for.
	defaultIdleTimeout = 10 * time.Second
	// defaultMaxBody holds a batch of a few thousand rows or a value of
	// several MiB (base64 adds a third); the Query tab's largest value,
	// 16 MiB, is for reading, not for one request.
	defaultMaxBody = 8 << 20
	// defaultMaxResult is the Query tab's budget for one result page: 8 MiB
	// of values, which the JSON around them at most doubles.
	defaultMaxResult = 8 << 20
	// tombstoneTTL is how long the baton of a stream that Host ended (a
	// restore, a pause) still answers with why, rather than with an
	// unknown baton: long enough for a client to come back for its commit.
	tombstoneTTL = 5 * time.Minute
)

// Server is the data plane's http.Handler, mounted at /db/.
type Server struct {
	cfg    Config
	logger *slog.Logger
	state  *streams
	// statuses are the databases' statuses lately read (statusTTL).
	statusMu sync.Mutex
	statuses map[string]knownStatus
	now      func() time.Time // the clock of statusTTL; tests move it
	// onEnd, when set (by tests), is told of every stream that ends.
	onEnd func()
}

// New returns the data plane. Close it after the HTTP server stopped.
func New(cfg Config) (*Server, error) {
	if cfg.Host == nil || cfg.Authenticate == nil || cfg.Status == nil || cfg.HTTPStatus == nil {
		return nil, errors.New("dataplane: Config needs Host, Authenticate, Status and HTTPStatus")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.StatementTimeout <= 0 {
		cfg.StatementTimeout = 30 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = defaultIdleTimeout
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = defaultMaxBody
	}
	if cfg.MaxResultBytes <= 0 {
		cfg.MaxResultBytes = defaultMaxResult
	}
	s := &Server{cfg: cfg, logger: cfg.Logger.With("part", "dataplane"), statuses: map[string]knownStatus{}, now: time.Now}
	s.state = newStreams(s)
	return s, nil
}

// Close ends every stream, rolling back its open transaction.
func (s *Server) Close(ctx context.Context) error {
	s.state.closeAll()
	return nil
}

type publicURLKey struct{}

// WithPublicURL tells the data plane the console's address as its users
// reach it (no trailing slash), for the base_url of its answers.
func WithPublicURL(ctx context.Context, url string) context.Context {
	return context.WithValue(ctx, publicURLKey{}, url)
}

// ServeHTTP serves /db/<id>/v2/pipeline, /db/<id>/v3/pipeline and
// /db/<id>/v3/cursor (POST), /db/<id>/v2 and /db/<id>/v3 (GET, the
// clients' version check), and the same without <id>, where the token
// tells the database: a client given the URL without its trailing slash
// resolves the paths one level up.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/db/")
	if !ok {
		s.fail(w, &snapdeck.Error{Code: snapdeck.NotFound, Message: "There is no data plane endpoint here."})
		return
	}
	parts := strings.Split(rest, "/")
	id := ""
	if len(parts) > 0 && snapdeck.ValidDatabaseID(parts[0]) {
		id, parts = parts[0], parts[1:]
	}
	switch {
	case len(parts) == 1 && (parts[0] == "v2" || parts[0] == "v3") && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "Hrana over HTTP (%s, JSON). POST %s/pipeline with a bearer token.\n", parts[0], parts[0])
	case len(parts) == 2 && (parts[0] == "v2" || parts[0] == "v3") && parts[1] == "pipeline":
		if r.Method != http.MethodPost {
			s.fail(w, &snapdeck.Error{Code: snapdeck.Invalid, Message: "Pipelines are sent with POST."})
			return
		}
		s.pipeline(w, r, id)
	case len(parts) == 2 && parts[0] == "v3" && parts[1] == "cursor" && r.Method == http.MethodPost:
		s.cursor(w, r, id)
	default:
		// v3-protobuf among others: the clients check it first and fall
		// back to JSON when it is not there.
		s.fail(w, &snapdeck.Error{Code: snapdeck.NotFound, Message: fmt.Sprintf(
			"There is no data plane endpoint at %s; clients post to <database URL>v2/pipeline or v3/pipeline.", r.URL.Path)})
	}
}

// pipeline runs one pipeline request.
func (s *Server) pipeline(w http.ResponseWriter, r *http.Request, pathID string) {
	var req pipelineRequest
	g, ok := s.accept(w, r, pathID, &req)
	if !ok {
		return
	}
	resp, err := s.serve(r.Context(), g, req.Baton, req.Requests)
	if err != nil {
		s.failAt(w, err, baseURL(r, g.DatabaseID))
		return
	}
	resp.BaseURL = baseURL(r, g.DatabaseID)
	s.reply(w, http.StatusOK, resp)
}

// serve runs requests on the stream a baton names, or on a new one, and
// returns the answer without its base_url, or the error of a baton that
// names no stream.
func (s *Server) serve(ctx context.Context, g Grant, baton *string, reqs []streamRequest) (*pipelineResponse, error) {
	resp := &pipelineResponse{Results: make([]streamResult, 0, len(reqs))}
	var st *stream
	var err error
	if baton != nil {
		if st, err = s.state.acquire(*baton, g); err != nil {
			return nil, err
		}
	}
	// A database that is not running answers every request with why,
	// without touching the stream: a restore ends it soon enough, and
	// after a pause the client opens a new one.
	refusal := s.refusal(ctx, g.DatabaseID, st != nil)
	if refusal == nil && st == nil {
		if st, err = s.state.open(ctx, g); err != nil {
			refusal = leaseError(err)
		}
	}
	if refusal == nil && st.lease.Err() != nil {
		refusal = leaseError(st.lease.Err())
	}
	if refusal != nil {
		s.cfg.Metrics.DataPlaneError(refusal.code)
		for range reqs {
			resp.Results = append(resp.Results, streamResult{Type: "error", Error: refusal.hrana()})
		}
	} else {
		resp.Results = st.run(ctx, reqs)
		for _, res := range resp.Results {
			if res.Error != nil {
				s.cfg.Metrics.DataPlaneError(res.Error.Code)
			}
		}
	}
	if st != nil {
		resp.Baton = s.state.release(st)
	}
	return resp, nil
}

// accept counts a request, checks its token and reads its body into v; it
// answers the request itself when it returns false.
func (s *Server) accept(w http.ResponseWriter, r *http.Request, pathID string, v any) (Grant, bool) {
	s.cfg.Metrics.DataPlanePipeline()
	g, err := s.authenticate(r.Context(), r, pathID)
	if err == nil {
		err = s.decode(w, r, v)
	}
	if err != nil {
		s.fail(w, err)
		return Grant{}, false
	}
	return g, true
}

// authenticate checks the bearer token and that it is the database's in
// the path, if the path names one.
func (s *Server) authenticate(ctx context.Context, r *http.Request, pathID string) (Grant, error) {
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(bearer) == "" {
		return Grant{}, &snapdeck.Error{Code: snapdeck.Unauthorized,
			Message: "This request has no token: send Authorization: Bearer <token>, made on the database's Overview."}
	}
	g, err := s.cfg.Authenticate(ctx, strings.TrimSpace(bearer))
	if err != nil {
		if snapdeck.ErrorCode(err) != snapdeck.Unauthorized {
			s.logger.Error("check data plane token", "err", err)
		}
		return Grant{}, err
	}
	if pathID != "" && pathID != g.DatabaseID {
		return Grant{}, &snapdeck.Error{Code: snapdeck.Unauthorized,
			Message: "This token belongs to another database; make one on this database's Overview."}
	}
	return g, nil
}

// decode reads a JSON body of at most MaxBodyBytes.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) error {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return s.tooLarge()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return s.tooLarge()
		}
		return &snapdeck.Error{Code: snapdeck.Invalid, Message: "The request body could not be read.", Err: err}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &snapdeck.Error{Code: snapdeck.Invalid, Message: "The request body is not a Hrana pipeline in JSON: " + err.Error()}
	}
	return nil
}

func (s *Server) tooLarge() error {
	return &snapdeck.Error{Code: snapdeck.TooLarge, Message: fmt.Sprintf(
		"The request body is larger than %d MiB; send the statements in smaller batches.", s.cfg.MaxBodyBytes>>20)}
}

// statusTTL is how long a database's status read for a request on an
// open stream is believed for the next ones. Reading it took 67 µs of the
// 190 µs the server spent on a point query (BenchmarkDataPlaneOneStream);
// believing it 100 ms lets a stream's requests go on for that long into a
// restore, whose swap ends the stream all the same (and its writes with
// it), and a pause ends the stream at once. A new stream always reads it:
// a lease on a paused database would open its files again.
const statusTTL = 100 * time.Millisecond

// knownStatus is a status read at a time.
type knownStatus struct {
	status snapdeck.Status
	at     time.Time
}

// status reads a database's status, or believes a recent read when
// recent is allowed.
func (s *Server) status(ctx context.Context, id string, recent bool) (snapdeck.Status, error) {
	if recent {
		s.statusMu.Lock()
		k, ok := s.statuses[id]
		s.statusMu.Unlock()
		if ok && s.now().Sub(k.at) < statusTTL {
			return k.status, nil
		}
	}
	st, err := s.cfg.Status(ctx, id)
	if err == nil {
		s.statusMu.Lock()
		if len(s.statuses) > 10000 {
			clear(s.statuses) // a bound; each entry is refilled on use
		}
		s.statuses[id] = knownStatus{st, s.now()}
		s.statusMu.Unlock()
	}
	return st, err
}

// refusal says why a database serves no statements now, or is nil while
// it runs. onStream allows a status read in the last statusTTL.
func (s *Server) refusal(ctx context.Context, id string, onStream bool) *stmtError {
	st, err := s.status(ctx, id, onStream)
	if err != nil {
		if snapdeck.ErrorCode(err) == snapdeck.NotFound {
			return &stmtError{code: "DATABASE_NOT_FOUND", msg: "This database no longer exists."}
		}
		s.logger.Error("look up database status", "database_id", id, "err", err)
		return &stmtError{code: "INTERNAL", msg: "Something went wrong on our side. The details are in the server log."}
	}
	switch st {
	case snapdeck.StatusRunning:
		return nil
	case snapdeck.StatusRestoring:
		return &stmtError{code: "DATABASE_RESTORING", msg: "The database is being restored from a snapshot (or overwritten); try again when it is done."}
	case snapdeck.StatusLoading:
		return &stmtError{code: "DATABASE_LOADING", msg: "The database is being loaded from an import; try again when it is done."}
	case snapdeck.StatusPaused:
		return &stmtError{code: "DATABASE_PAUSED", msg: "The database is paused; resume it to run statements."}
	}
	return &stmtError{code: "DATABASE_UNAVAILABLE", msg: fmt.Sprintf("The database is %s and serves no statements now.", st)}
}

// leaseError is why a stream's lease could not be had or ended, as a Hrana
// error.
func leaseError(err error) *stmtError {
	e, ok := snapdeck.AsError(err)
	if !ok {
		return &stmtError{code: "INTERNAL", msg: "Something went wrong on our side. The details are in the server log."}
	}
	code := "STREAM_ENDED"
	switch {
	case e.Reason == "session-revoked":
		code = "STREAM_REVOKED"
	case e.Code == snapdeck.TooMany:
		code = "TOO_MANY_STREAMS"
	case e.Code == snapdeck.Busy:
		code = "DATABASE_BUSY"
	case e.Code == snapdeck.NotFound:
		code = "DATABASE_NOT_FOUND"
	}
	return &stmtError{code: code, msg: e.Message}
}

// baseURL is the database's own URL, ending in a slash.
func baseURL(r *http.Request, id string) string {
	base, _ := r.Context().Value(publicURLKey{}).(string)
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return base + "/db/" + id + "/"
}

// errorBody is the body of an answer that is not a Hrana result: "error"
// for the Go client and the contract, "message" and "code" for the
// JavaScript one, which reads a Hrana Error.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	Code    string `json:"code"`
	// BaseURL is the database's URL once the token told it.
	BaseURL string `json:"base_url,omitempty"`
}

// fail answers err outside a Hrana result.
func (s *Server) fail(w http.ResponseWriter, err error) { s.failAt(w, err, "") }

// failAt answers err outside a Hrana result, with the database's URL.
func (s *Server) failAt(w http.ResponseWriter, err error, base string) {
	code := snapdeck.ErrorCode(err)
	msg := snapdeck.ErrorMessage(err)
	hcode := strings.ToUpper(strings.ReplaceAll(string(code), "-", "_"))
	var se *stmtError
	if errors.As(err, &se) {
		code, msg, hcode = snapdeck.Invalid, se.msg, se.code
	}
	if code == snapdeck.Internal {
		s.logger.Error("data plane request failed", "err", err)
	}
	s.cfg.Metrics.DataPlaneError(hcode)
	s.reply(w, s.cfg.HTTPStatus(code), errorBody{Error: msg, Message: msg, Code: hcode, BaseURL: base})
}

// reply writes v as JSON. The content type is exactly application/json:
// the JavaScript client reads an error's body only then.
func (s *Server) reply(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.logger.Error("encode data plane answer", "err", err)
		status = http.StatusInternalServerError
		b = []byte(`{"error":"The answer could not be encoded.","message":"The answer could not be encoded.","code":"INTERNAL"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}
