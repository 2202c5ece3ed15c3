// Package s3blobs keeps the snapshot store's blobs on S3-compatible object
// storage (AWS S3, SeaweedFS, MinIO and the like), through minio-go with
// path-style addressing. S3 is the remote store itself; Cache puts a local
// disk cache of recently used ranges in front of it and reads several
// ranges at once; Lease makes one node the owner of a prefix.
// docs/snapshot-store.md describes the layout.
package s3blobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapstore"
)

// Config says where the store lives and how to sign in to it.
type Config struct {
	// Bucket and Prefix: the store's blobs are the objects under
	// Prefix + "/" in Bucket (the whole bucket when Prefix is empty).
	Bucket, Prefix string
	// Endpoint is the server's URL, such as http://127.0.0.1:8333 or
	// https://s3.eu-west-1.amazonaws.com.
	Endpoint string
	// Region is sent in the signature; us-east-1 when empty.
	Region string
	// AccessKeyID and SecretAccessKey sign every request.
	AccessKeyID, SecretAccessKey string
}

// ParseURL splits a store URL, s3://BUCKET/PREFIX, into its bucket and
// prefix (without slashes at either end; it may be empty).
func ParseURL(s string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return "", "", snapdeck.Errorf(snapdeck.Invalid, "%q is not an s3://BUCKET/PREFIX URL", s)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	prefix = strings.Trim(prefix, "/")
	if bucket == "" {
		return "", "", snapdeck.Errorf(snapdeck.Invalid, "%q names no bucket: want s3://BUCKET/PREFIX", s)
	}
	return bucket, prefix, nil
}

// partSize is the part size of multipart uploads: objects up to it go in
// one PUT (every pack does: packs are 8 MiB), larger ones, such as
// point-in-time files or a future larger pack, in parts of this size sent
// partThreads at a time.
const (
	partSize    = 16 << 20
	partThreads = 4
)

// maxRetries is how often minio-go tries a request before giving up: a
// few retries ride out a server restart, and an unreachable endpoint is
// reported within seconds instead of after minio-go's default of ten
// tries with back-off.
const maxRetries = 3

// S3 is a snapstore.Blobs on an S3 bucket. Put uploads an object whole (in
// parts when large); S3 makes an object visible only once all of it is
// stored, so a crash during Put leaves the old object or none, never part
// of it. It counts its requests (Requests). It is safe for concurrent use.
type S3 struct {
	client   *minio.Client
	bucket   string
	prefix   string // "" or ending in "/"
	endpoint string
	counts   counters
	// fenced, once set by a Lease that found its prefix taken over, is
	// the error every later Put and Delete returns: a node that lost the
	// prefix must not write or delete another node's data.
	fenced atomic.Pointer[error]
}

// fence makes every later Put and Delete fail with err.
func (s *S3) fence(err error) { s.fenced.CompareAndSwap(nil, &err) }

// checkFence returns the error a fence set, if any.
func (s *S3) checkFence() error {
	if err := s.fenced.Load(); err != nil {
		return *err
	}
	return nil
}

// The kinds of request counted.
const (
	kindPut = iota
	kindGet
	kindList
	kindDelete
	kindStat
	kinds
)

type counters [kinds]atomic.Int64

func (c *counters) load() Requests {
	return Requests{c[kindPut].Load(), c[kindGet].Load(), c[kindList].Load(), c[kindDelete].Load(), c[kindStat].Load()}
}

// processCounts counts the requests of every S3 of the process.
var processCounts counters

// count records n requests of kind k.
func (s *S3) count(k int, n int64) {
	s.counts[k].Add(n)
	processCounts[k].Add(n)
}

// ProcessRequests returns how many requests every S3 of this process has
// made so far: a benchmark running the whole console in its own process
// counts the requests of one step with it.
func ProcessRequests() Requests { return processCounts.load() }

// Requests counts the requests an S3 has made, by kind.
type Requests struct {
	Put, Get, List, Delete, Stat int64
}

// Total is the number of requests of every kind.
func (r Requests) Total() int64 { return r.Put + r.Get + r.List + r.Delete + r.Stat }

// Sub returns the requests made since an earlier count.
func (r Requests) Sub(o Requests) Requests {
	return Requests{r.Put - o.Put, r.Get - o.Get, r.List - o.List, r.Delete - o.Delete, r.Stat - o.Stat}
}

// New returns an S3 for cfg. It makes no request: Check does.
func New(cfg Config) (*S3, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, snapdeck.Errorf(snapdeck.Invalid, "S3 endpoint %q: want an http:// or https:// URL", cfg.Endpoint)
	}
	if cfg.AccessKeyID == "" || cfg.SecretAccessKey == "" {
		return nil, snapdeck.Errorf(snapdeck.Invalid, "no S3 credentials: set SNAPDECK_S3_ACCESS_KEY_ID and SNAPDECK_S3_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, ""),
		Secure:       u.Scheme == "https",
		Region:       region,
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   maxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("S3 client for %s: %w", cfg.Endpoint, err)
	}
	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &S3{client: client, bucket: cfg.Bucket, prefix: prefix, endpoint: cfg.Endpoint}, nil
}

// String names the store as the operator gave it.
func (s *S3) String() string {
	return "s3://" + s.bucket + "/" + strings.TrimSuffix(s.prefix, "/")
}

// Requests returns how many requests s has made so far.
func (s *S3) Requests() Requests {
	return s.counts.load()
}

// checkTimeout bounds the start-up check, so that serve does not hang on an
// endpoint that accepts connections and never answers.
const checkTimeout = 20 * time.Second

// Check makes a real request to the bucket (a listing of the prefix, which
// needs the bucket, valid credentials and the right to read it) and
// returns what went wrong in words: wrong credentials, a missing bucket,
// an unreachable endpoint. A listing, not a HEAD of the bucket: an error
// to a HEAD has no body, so it cannot say which of these it was.
func (s *S3) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	s.count(kindList, 1)
	for info := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix, MaxKeys: 1}) {
		if info.Err == nil {
			break
		}
		if minio.ToErrorResponse(info.Err).Code == "NoSuchBucket" {
			return snapdeck.Errorf(snapdeck.Invalid, "S3 at %s: bucket %q does not exist", s.endpoint, s.bucket)
		}
		return s.wrap("list "+s.String(), info.Err)
	}
	return nil
}

// wrap turns a minio-go error into one that says which server and what it
// answered, safe to show: a failed job shows it as its reason.
func (s *S3) wrap(doing string, err error) error {
	resp := minio.ToErrorResponse(err)
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("S3 at %s: %s: %w", s.endpoint, doing, err)
	case resp.Code == "NoSuchKey":
		return &snapdeck.Error{Code: snapdeck.NotFound, Message: doing + ": not found", Err: err}
	case resp.Code != "":
		msg := resp.Message
		if msg == "" {
			msg = resp.Code
		}
		return &snapdeck.Error{Code: snapdeck.Internal, Message: fmt.Sprintf("S3 at %s: %s: %s (%s)", s.endpoint, doing, msg, resp.Code)}
	}
	return &snapdeck.Error{Code: snapdeck.Internal, Message: fmt.Sprintf("S3 at %s: %s: %v", s.endpoint, doing, err)}
}

func (s *S3) object(key string) string { return s.prefix + key }

// Put uploads data under key, in parts when it is larger than partSize.
func (s *S3) Put(ctx context.Context, key string, data []byte) error {
	if err := s.checkFence(); err != nil {
		return err
	}
	return s.putObject(ctx, key, bytes.NewReader(data), int64(len(data)))
}

// putObject uploads size bytes from r under key, in parts when they are
// more than partSize, and counts the requests.
func (s *S3) putObject(ctx context.Context, key string, r io.Reader, size int64) error {
	s.count(kindPut, max(1, (size+partSize-1)/partSize))
	if size > partSize {
		s.count(kindPut, 2) // a multipart upload is started and completed
	}
	_, err := s.client.PutObject(ctx, s.bucket, s.object(key), r, size,
		minio.PutObjectOptions{ContentType: "application/octet-stream", PartSize: partSize, NumThreads: partThreads})
	if err != nil {
		return s.wrap("put blob "+key, err)
	}
	return nil
}

// Get downloads the whole blob under key.
func (s *S3) Get(ctx context.Context, key string) ([]byte, error) {
	s.count(kindGet, 1)
	obj, err := s.client.GetObject(ctx, s.bucket, s.object(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, s.wrap("get blob "+key, err)
	}
	defer obj.Close()
	data, err := io.ReadAll(obj)
	if err != nil {
		return nil, s.wrap("get blob "+key, err)
	}
	return data, nil
}

// GetRange reads len(buf) bytes of the blob under key at off; off < 0
// counts from its end.
func (s *S3) GetRange(ctx context.Context, key string, off int64, buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	var opts minio.GetObjectOptions
	var err error
	switch {
	case off >= 0:
		err = opts.SetRange(off, off+int64(len(buf))-1)
	case -off == int64(len(buf)):
		err = opts.SetRange(0, off) // the last -off bytes
	default:
		size, serr := s.Size(ctx, key)
		if serr != nil {
			return serr
		}
		off += size
		if off < 0 {
			return fmt.Errorf("get blob %s: range %d bytes from the end of a %d-byte blob", key, len(buf), size)
		}
		err = opts.SetRange(off, off+int64(len(buf))-1)
	}
	if err != nil {
		return fmt.Errorf("get blob %s: %w", key, err)
	}
	s.count(kindGet, 1)
	obj, err := s.client.GetObject(ctx, s.bucket, s.object(key), opts)
	if err != nil {
		return s.wrap("get blob "+key, err)
	}
	defer obj.Close()
	if _, err := io.ReadFull(obj, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return s.wrap(fmt.Sprintf("get blob %s [%d, +%d)", key, off, len(buf)), err)
	}
	return nil
}

// streamRange reads len(buf) bytes of the blob under key at off >= 0,
// straight from the response body (minio-go's Core: the Object that
// GetObject returns hands every read to a goroutine of its own), and calls
// filled with how much of buf holds data each time another step bytes (or
// the last of buf) have arrived: a reader of a pack's first blocks goes on
// while its last ones are still on the wire.
func (s *S3) streamRange(ctx context.Context, key string, off int64, buf []byte, step int, filled func(n int)) error {
	if len(buf) == 0 {
		return nil
	}
	var opts minio.GetObjectOptions
	if err := opts.SetRange(off, off+int64(len(buf))-1); err != nil {
		return fmt.Errorf("get blob %s: %w", key, err)
	}
	s.count(kindGet, 1)
	body, _, _, err := minio.Core{Client: s.client}.GetObject(ctx, s.bucket, s.object(key), opts)
	if err != nil {
		return s.wrap("get blob "+key, err)
	}
	defer body.Close()
	for n := 0; n < len(buf); {
		m, err := io.ReadFull(body, buf[n:min(len(buf), n+step)])
		n += m
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return s.wrap(fmt.Sprintf("get blob %s [%d, +%d)", key, off, len(buf)), err)
		}
		filled(n)
	}
	return nil
}

// Size returns the size of the blob under key.
func (s *S3) Size(ctx context.Context, key string) (int64, error) {
	s.count(kindStat, 1)
	info, err := s.client.StatObject(ctx, s.bucket, s.object(key), minio.StatObjectOptions{})
	if err != nil {
		return 0, s.wrap("stat blob "+key, err)
	}
	return info.Size, nil
}

// Delete removes the blob under key; a missing one is not an error.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := s.checkFence(); err != nil {
		return err
	}
	s.count(kindDelete, 1)
	if err := s.client.RemoveObject(ctx, s.bucket, s.object(key), minio.RemoveObjectOptions{}); err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil
		}
		return s.wrap("delete blob "+key, err)
	}
	return nil
}

// List calls fn with every blob's key.
func (s *S3) List(ctx context.Context, fn func(key string) error) error {
	return s.ListSizes(ctx, func(key string, _ int64) error { return fn(key) })
}

// listPage is how many keys one list request returns (S3's maximum).
const listPage = 1000

// ListSizes calls fn with every blob's key and size. The lease object is
// not a blob and is not listed.
func (s *S3) ListSizes(ctx context.Context, fn func(key string, size int64) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops minio-go's listing goroutine when fn stops early
	seen := 0
	s.count(kindList, 1)
	for info := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix, Recursive: true}) {
		if info.Err != nil {
			return s.wrap("list "+s.String(), info.Err)
		}
		if seen++; seen%listPage == 0 {
			s.count(kindList, 1)
		}
		key := strings.TrimPrefix(info.Key, s.prefix)
		if key == leaseKey || key == "" || strings.HasSuffix(key, "/") {
			continue
		}
		if err := fn(key, info.Size); err != nil {
			return err
		}
	}
	return ctx.Err()
}

var (
	_ snapstore.Blobs       = (*S3)(nil)
	_ snapstore.RangeGetter = (*S3)(nil)
)
