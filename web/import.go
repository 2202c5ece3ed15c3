package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"

	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/bytesize"
	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/importfile"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/views"
)

// uploadPaths are the requests whose bodies are files: the console's
// import form and the API's upload chunks. They are exempt from the
// console-wide body limit and bounded by --max-import-size instead.
// (/v1beta5 paths are rewritten to /v1 before this is asked.)
var uploadPaths = regexp.MustCompile(`^/databases/[^/]+/import$|^/v1/instances/[^/]+/import/[^/]+$`)

// isUpload reports whether a request carries an upload as its body.
func isUpload(r *http.Request) bool {
	return (r.Method == http.MethodPost || r.Method == http.MethodPut) && uploadPaths.MatchString(r.URL.Path)
}

// isMultipart reports whether a request body is multipart/form-data, which
// is read only by the handler that streams it.
func isMultipart(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
	return mt == echo.MIMEMultipartForm
}

// maxImportSize is the largest upload accepted.
func (s *Server) maxImportSize() int64 {
	if s.cfg.MaxImportSize > 0 {
		return s.cfg.MaxImportSize
	}
	return importfile.DefaultMaxSize
}

// importLimits are the limits handed to every load.
func (s *Server) importLimits() importfile.Limits {
	return importfile.Limits{MaxSize: s.maxImportSize(), CheckTimeout: s.cfg.ImportCheckTimeout}
}

// checkContext is what an upload's check runs on: the request's context,
// which ends when the client goes away, ended as well when the console
// shuts down.
func (s *Server) checkContext(c echo.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(c.Request().Context())
	stop := context.AfterFunc(s.stop, cancel)
	return ctx, func() { stop(); cancel() }
}

// importTab is GET /databases/{id}/import.
func (s *Server) importTab(c echo.Context) error {
	d, err := s.database(c)
	if err != nil {
		return err
	}
	return s.renderImport(c, http.StatusOK, views.ImportTab{DB: d, MaxSize: s.maxImportSize()})
}

func (s *Server) renderImport(c echo.Context, status int, v views.ImportTab) error {
	p := s.page(c, v.DB.Name+" · Import", "databases")
	if isPartial(c) {
		return render(c, status, views.ImportForm(p, v))
	}
	return render(c, status, views.ImportTabPage(p, v))
}

// importUpload is POST /databases/{id}/import: the multipart field "dump"
// is streamed to tmp/uploads (never held in memory), checked completely,
// and loaded by a job whose page the browser is sent to. A refused file
// re-shows the tab with the message, as 400 (or 413 when too large).
func (s *Server) importUpload(c echo.Context) error {
	d, err := s.database(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.checkContext(c)
	defer cancel()
	// Load refuses a database busy with another load before the file is
	// received, then receives it, checks it, and records the outcome.
	name := ""
	j, err := s.deps.Snapshots.Load(ctx, d.ID, database.LoadSource{Overwrite: true, Limits: s.importLimits(),
		Receive: func(dir string) (string, string, error) {
			path, n, err := receiveUpload(c.Request(), dir, s.maxImportSize())
			name = n
			if err == nil {
				// Read the request to its end: only then does the server
				// see a client that goes away, which ends the check.
				io.Copy(io.Discard, io.LimitReader(c.Request().Body, 64<<10))
			}
			return path, n, err
		}}, actor(c))
	if err == nil {
		if isPartial(c) {
			c.Response().Header().Set("HX-Redirect", "/jobs/"+j.ID)
			return c.NoContent(http.StatusNoContent)
		}
		return c.Redirect(http.StatusSeeOther, "/jobs/"+j.ID)
	}
	switch code := snapdeck.ErrorCode(err); code {
	case snapdeck.Invalid, snapdeck.TooLarge, snapdeck.Busy, snapdeck.Conflict, snapdeck.TooMany:
		if fresh, ferr := s.database(c); ferr == nil {
			d = fresh
		}
		return s.renderImport(c, statusOf(code), views.ImportTab{DB: d, MaxSize: s.maxImportSize(),
			Error: snapdeck.Sentence(snapdeck.ErrorMessage(err)), FileName: name})
	}
	return err
}

// receiveUpload streams the file field "dump" of a multipart request into
// a new file in dir and returns its path and the name the browser gave.
// More than max bytes is refused with TooLarge as soon as it is seen.
func receiveUpload(r *http.Request, dir string, max int64) (path, name string, err error) {
	if !isMultipart(r) {
		return "", "", snapdeck.FieldError("dump", "Choose a file to load: the form sends it as multipart/form-data.")
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return "", "", snapdeck.FieldError("dump", "The upload could not be read: %v.", err)
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return "", "", snapdeck.FieldError("dump", "Choose a file to load.")
		}
		if err != nil {
			return "", "", uploadReadError(err)
		}
		if part.FormName() != "dump" {
			// Small fields (_csrf) are read and dropped; the token was
			// checked from the query string or header already.
			io.Copy(io.Discard, io.LimitReader(part, 64<<10))
			part.Close()
			continue
		}
		name = cleanFileName(part.FileName())
		f, err := os.CreateTemp(dir, "upload-*")
		if err != nil {
			return "", name, err
		}
		n, err := io.Copy(f, io.LimitReader(part, max+1))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		switch {
		case err != nil:
			os.Remove(f.Name())
			return "", name, uploadReadError(err)
		case n > max:
			os.Remove(f.Name())
			return "", name, &snapdeck.Error{Code: snapdeck.TooLarge, Field: "dump",
				Message: fmt.Sprintf("the file is larger than this console's import limit of %s (--max-import-size)", bytesize.Format(max))}
		case n == 0 && name == "":
			os.Remove(f.Name())
			return "", name, snapdeck.FieldError("dump", "Choose a file to load.")
		}
		return f.Name(), name, nil
	}
}

// uploadReadError explains an upload that stopped arriving.
func uploadReadError(err error) error {
	return &snapdeck.Error{Code: snapdeck.Invalid, Field: "dump", Err: err,
		Message: "the upload was interrupted before the whole file arrived; try again"}
}

// cleanFileName keeps the base name a browser sent, printable and short,
// for messages and the Load snapshot's reason.
func cleanFileName(name string) string {
	name = filepath.Base(strings.ReplaceAll(name, `\`, "/"))
	name = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, name)
	if name == "." || name == "/" {
		name = ""
	}
	if r := []rune(name); len(r) > 100 {
		name = string(r[:100])
	}
	if name == "" {
		return "upload"
	}
	return name
}
