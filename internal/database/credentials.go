package database

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"

	"github.com/snapdeck/snapdeck/internal/activity"

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

// newCredentials makes a database's credentials: its username, the same
// for the database's whole life, and a new random password.
func newCredentials(id string) Credentials {
	return Credentials{DatabaseID: id, Username: "snapdeck-" + id, Password: auth.RandomSecret(18)}
}

// ResetCredentials gives a database a new password, replacing the earlier
// one, and records database.credentials.reset in the activity log. The
// password is in the reply only; a hash is kept.
func (ds *Databases) ResetCredentials(ctx context.Context, actor, id string) (Credentials, error) {
	d, err := ds.find(ctx, id)
	var c Credentials
	if err == nil {
		c = newCredentials(id)
		err = ds.db.SetDatabaseCredentials(ctx, id, c.Username, hashCredential(c.Password))
	}
	detail := ""
	if err == nil {
		detail = "Reset the credentials of " + d.Name
		ds.logger.Info("database credentials issued", "database_id", id)
	} else {
		c = Credentials{}
	}
	ds.record(ctx, actor, activity.CredentialReset, id, "", err, 0, detail)
	return c, err
}

// CheckCredentials reports whether username and password are the
// database's current credentials.
func (ds *Databases) CheckCredentials(ctx context.Context, id, username, password string) (bool, error) {
	u, h, err := ds.db.FindDatabaseCredentials(ctx, id)
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
