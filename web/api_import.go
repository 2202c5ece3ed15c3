package web

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/apikey"
	"github.com/snapdeck/snapdeck/internal/upload"
)

// importAPI serves POST /v1/instances/{id}/import and its uploads, the
// import extension push-to-cloud uses (docs/api.md); the uploads
// themselves are upload.Service's.
type importAPI struct {
	a       *api
	uploads *upload.Service
}

// newImportAPI serves the uploads of Deps.Uploads.
func (a *api) newImportAPI() *importAPI {
	return &importAPI{a: a, uploads: a.s.deps.Uploads}
}

// answer encodes an upload's reply, or the error; the bytes received go
// in a header whenever the reply knows them, a refused chunk from the
// wrong place included.
func answer(c echo.Context, status int, r upload.Reply, err error) error {
	if r.UploadID != "" {
		c.Response().Header().Set(upload.HeaderReceived, strconv.FormatInt(r.Received, 10))
	}
	if err != nil {
		return err
	}
	return data(c, status, r)
}

// start is POST /v1/instances/{id}/import: announce an upload by its size
// and SHA-256, so that a file over the limit, a busy database, or one that
// holds data without X-Snapdeck-Overwrite is refused before any byte is
// sent.
func (im *importAPI) start(c echo.Context) error {
	d, err := im.a.findInstance(c)
	if err != nil {
		return err
	}
	req, err := upload.ParseAnnounce(c.Request().Header)
	if err != nil {
		return err
	}
	req.Filename = cleanFileName(req.Filename)
	r, err := im.uploads.Announce(c.Request().Context(), d, req, apikey.Actor(callerKey(c)))
	return answer(c, http.StatusAccepted, r, err)
}

// status is GET /v1/instances/{id}/import/{uploadId}: how many bytes
// arrived (to resume from), and how the load goes once all did.
func (im *importAPI) status(c echo.Context) error {
	r, err := im.uploads.Status(c.Request().Context(), c.Param("id"), c.Param("uid"))
	return answer(c, http.StatusOK, r, err)
}

// put is PUT /v1/instances/{id}/import/{uploadId} with Content-Range
// "bytes START-END/SIZE": the next chunk, starting exactly where the
// received bytes end. The chunk that completes the file is checked and
// loaded as the console's IMPORT DATABASE tab does: 202 with the load's
// job, or the refusal. The check runs on checkContext: it stops when the
// client goes away or the console shuts down.
func (im *importAPI) put(c echo.Context) error {
	ctx, cancel := im.a.s.checkContext(c)
	defer cancel()
	req := c.Request()
	r, started, err := im.uploads.Put(ctx, c.Param("id"), c.Param("uid"),
		upload.Chunk{Range: req.Header.Get(upload.HeaderContentRange), Length: req.ContentLength, Body: req.Body})
	status := http.StatusOK
	if started {
		status = http.StatusAccepted
	}
	return answer(c, status, r, err)
}
