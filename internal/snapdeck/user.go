package snapdeck

import "time"

// Role is what a user may do. Checked on the server for every route.
type Role string

// The roles, from most to least privileged.
const (
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
	RoleViewer Role = "viewer"
)

// Valid reports whether r is one of the three roles.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleMember || r == RoleViewer }

// CanWrite reports whether the role may change databases and snapshots.
func (r Role) CanWrite() bool { return r == RoleAdmin || r == RoleMember }

// IsAdmin reports whether the role may manage users.
func (r Role) IsAdmin() bool { return r == RoleAdmin }

// User is a person who signs in to the console.
type User struct {
	ID           int64
	Email        string
	PasswordHash string
	Role         Role
	Disabled     bool
	CreatedAt    time.Time
}
