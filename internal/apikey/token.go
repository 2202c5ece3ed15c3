package apikey

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// tokenPrefix versions the token format, so a later format can be told
// apart from this one.
const tokenPrefix = "sd1."

var errBadToken = errors.New("malformed or forged token")

// signer makes and checks access tokens: "sd1." + base64url(key id, expiry)
// + "." + base64url(HMAC-SHA256). The token names its key, so revoking the
// key can end it; nothing needs remembering per token.
type signer struct {
	key []byte
}

func newSigner(encoded string) (*signer, error) {
	key, err := base64.RawURLEncoding.DecodeString(encoded)
	if err != nil || len(key) < 32 {
		return nil, fmt.Errorf("the token key in the store is damaged: %v", err)
	}
	return &signer{key: key}, nil
}

func (s *signer) mac(payload []byte) []byte {
	h := hmac.New(sha256.New, s.key)
	h.Write([]byte(tokenPrefix))
	h.Write(payload)
	return h.Sum(nil)
}

func (s *signer) sign(keyID int64, exp time.Time) string {
	var payload [16]byte
	binary.BigEndian.PutUint64(payload[:8], uint64(keyID))
	binary.BigEndian.PutUint64(payload[8:], uint64(exp.Unix()))
	enc := base64.RawURLEncoding
	return tokenPrefix + enc.EncodeToString(payload[:]) + "." + enc.EncodeToString(s.mac(payload[:]))
}

func (s *signer) verify(token string) (keyID int64, exp time.Time, err error) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok {
		return 0, exp, errBadToken
	}
	p, m, ok := strings.Cut(rest, ".")
	if !ok {
		return 0, exp, errBadToken
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	sum, err2 := base64.RawURLEncoding.DecodeString(m)
	if err1 != nil || err2 != nil || len(payload) != 16 {
		return 0, exp, errBadToken
	}
	if !hmac.Equal(sum, s.mac(payload)) {
		return 0, exp, errBadToken
	}
	return int64(binary.BigEndian.Uint64(payload[:8])), time.Unix(int64(binary.BigEndian.Uint64(payload[8:])), 0), nil
}
