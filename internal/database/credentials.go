package database

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"

	"github.com/snapdeck/snapdeck/internal/auth"
)

// Credentials are a database's own username and password, for programs
// that connect to it. The password is shown once, when issued; only a hash
// is kept.
type Credentials struct {
	DatabaseID string
	Username   string
	Password   string
}

// credentialHashPrefix names the hash scheme, so a later scheme can be told
// apart. SHA-256 suffices: the password is random and long, not chosen by a
// person, and a data-plane check must stay cheap.
const credentialHashPrefix = "sha256:"

func hashCredential(password string) string {
	sum := sha256.Sum256([]byte(password))
	return credentialHashPrefix + hex.EncodeToString(sum[:])
}

// IssueCredentials gives a database a new password (and its username, the
// same for the database's whole life), replacing any earlier one.
func (m *Manager) IssueCredentials(ctx context.Context, id string) (Credentials, error) {
	c := Credentials{DatabaseID: id, Username: "snapdeck-" + id, Password: auth.RandomSecret(18)}
	if err := m.db.SetDatabaseCredentials(ctx, id, c.Username, hashCredential(c.Password)); err != nil {
		return Credentials{}, err
	}
	m.logger.Info("database credentials issued", "database_id", id)
	return c, nil
}

// CheckCredentials reports whether username and password are the
// database's current credentials.
func (m *Manager) CheckCredentials(ctx context.Context, id, username, password string) (bool, error) {
	u, h, err := m.db.FindDatabaseCredentials(ctx, id)
	if err != nil {
		return false, err
	}
	if u == "" || !strings.HasPrefix(h, credentialHashPrefix) {
		return false, nil
	}
	okUser := subtle.ConstantTimeCompare([]byte(u), []byte(username)) == 1
	okPass := subtle.ConstantTimeCompare([]byte(h), []byte(hashCredential(password))) == 1
	return okUser && okPass, nil
}
