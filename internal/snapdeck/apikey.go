package snapdeck

import "time"

// APIKey lets a program call the API on behalf of the user who created it.
// The secret is shown once at creation; only its hash is kept.
type APIKey struct {
	ID         int64
	ClientID   string
	SecretHash string // hex SHA-256 of the secret
	Name       string
	UserID     int64
	CreatedAt  time.Time
	LastUsedAt time.Time // zero until first used
	RevokedAt  time.Time // zero while the key works

	// The owner as of the lookup: a key acts with its owner's current
	// role, and stops working when the owner is disabled.
	UserEmail    string
	UserRole     Role
	UserDisabled bool
}

// IsRevoked reports whether the key was revoked.
func (k APIKey) IsRevoked() bool { return !k.RevokedAt.IsZero() }

// Placement is where an API client asked for a database to live, as Aura's
// instance object names it. snapdeck hosts every database on this machine
// whatever is asked; it keeps the values so that the API echoes them back.
// Empty fields were not given.
type Placement struct {
	CloudProvider string
	Region        string
	Memory        string
	Storage       string
}
