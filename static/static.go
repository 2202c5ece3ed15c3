// Package static embeds the console's built CSS, vendored JavaScript and icons,
// and serves them under content-hashed URLs so browsers may cache them forever.
package static

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed css js icons
var files embed.FS

// Prefix is the URL path under which Handler expects to be mounted.
const Prefix = "/static/"

// Cache-Control values: hashed names never change, plain names may.
const (
	cacheImmutable = "public, max-age=31536000, immutable"
	cacheShort     = "public, max-age=300"
)

// asset is one embedded file with its content hash.
type asset struct {
	name   string // path inside the embedded tree, e.g. "css/app.css"
	hashed string // the same with the hash before the extension, e.g. "css/app.3f2a1b9c.css"
	etag   string
	ctype  string
	body   []byte
}

var (
	byName   = map[string]*asset{}
	byHashed = map[string]*asset{}
)

// contentTypes is fixed here rather than read from the system's mime tables,
// which differ between machines.
var contentTypes = map[string]string{
	".css": "text/css; charset=utf-8",
	".js":  "text/javascript; charset=utf-8",
	".svg": "image/svg+xml",
	".txt": "text/plain; charset=utf-8",
	".png": "image/png",
	".ico": "image/x-icon",
}

func init() {
	err := fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := files.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:])[:8]
		ext := path.Ext(name)
		a := &asset{
			name:   name,
			hashed: strings.TrimSuffix(name, ext) + "." + hash + ext,
			etag:   `"` + hash + `"`,
			ctype:  contentType(ext),
			body:   body,
		}
		byName[a.name] = a
		byHashed[a.hashed] = a
		return nil
	})
	if err != nil {
		panic("static: reading embedded files: " + err.Error())
	}
}

func contentType(ext string) string {
	if t, ok := contentTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

// Path returns the content-hashed URL of the embedded file name, such as
// "/static/css/app.3f2a1b9c.css" for "css/app.css". A name that is not
// embedded gets its plain URL, which Handler answers with 404.
func Path(name string) string {
	name = strings.TrimPrefix(name, "/")
	if a, ok := byName[name]; ok {
		return Prefix + a.hashed
	}
	return Prefix + name
}

// Handler serves the embedded files. Mount it at Prefix, with or without
// stripping the prefix. Hashed names (from Path) are cached for a year as
// immutable; plain names are served too, with a short cache, for links that
// cannot carry a hash. Anything else, including a stale hash, is 404.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, Prefix)
		name = strings.TrimPrefix(name, "/")
		a, cache := byHashed[name], cacheImmutable
		if a == nil {
			a, cache = byName[name], cacheShort
		}
		if a == nil {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.ctype)
		h.Set("Cache-Control", cache)
		h.Set("ETag", a.etag)
		h.Set("X-Content-Type-Options", "nosniff")
		// ServeContent answers If-None-Match against the ETag and Range requests.
		http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
	})
}
