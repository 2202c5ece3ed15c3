package auth

import (
	"context"
	"fmt"
	"strconv"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// maxTypedDetail bounds the part of a detail the admin typed: a refused
// add names the address as typed, which may be anything up to the form
// limit; 300 characters hold any valid one (254 at most).
const maxTypedDetail = 300

// Invite adds a user on behalf of the admin by: AddUser, recorded in the
// activity log as user.add, refused or not.
func (a *Authenticator) Invite(ctx context.Context, by snapdeck.User, email, password string, role snapdeck.Role) (snapdeck.User, error) {
	u, err := a.AddUser(ctx, email, password, role)
	if r := []rune(email); len(r) > maxTypedDetail {
		email = string(r[:maxTypedDetail]) + "…"
	}
	a.recordUser(ctx, by, activity.UserAdd, fmt.Sprintf("%s as %s", email, role), err)
	return u, err
}

// SetRole gives the user id another role, on behalf of the admin by,
// recorded in the activity log as user.role.
func (a *Authenticator) SetRole(ctx context.Context, by snapdeck.User, id int64, role snapdeck.Role) (snapdeck.User, error) {
	return a.changeUser(ctx, by, activity.UserRole, id, func(u snapdeck.User) (string, error) {
		did := fmt.Sprintf("%s from %s to %s", u.Email, u.Role, role)
		if !role.Valid() {
			return did, snapdeck.FieldError("role", "Choose a role: admin, member or viewer.")
		}
		return did, a.db.SetUserRole(ctx, u.ID, role)
	})
}

// SetDisabled disables the user id, ending their sessions, or enables
// them again, on behalf of the admin by, who cannot disable themselves;
// recorded in the activity log as user.disable or user.enable.
func (a *Authenticator) SetDisabled(ctx context.Context, by snapdeck.User, id int64, disabled bool) (snapdeck.User, error) {
	action := activity.UserEnable
	if disabled {
		action = activity.UserDisable
	}
	return a.changeUser(ctx, by, action, id, func(u snapdeck.User) (string, error) {
		if disabled && u.ID == by.ID {
			return u.Email, snapdeck.Errorf(snapdeck.Conflict, "You cannot disable yourself.")
		}
		return u.Email, a.db.SetUserDisabled(ctx, u.ID, disabled)
	})
}

// changeUser runs change on the user id and records it as action, with
// what change says it did to whom and how it ended.
func (a *Authenticator) changeUser(ctx context.Context, by snapdeck.User, action activity.Action, id int64,
	change func(u snapdeck.User) (did string, err error)) (snapdeck.User, error) {
	u, err := a.db.FindUser(ctx, id)
	if err != nil {
		a.recordUser(ctx, by, action, "user "+strconv.FormatInt(id, 10), err)
		return u, err
	}
	did, err := change(u)
	a.recordUser(ctx, by, action, did, err)
	return u, err
}

// recordUser writes an admin's change to a user to the activity log: the
// admin is the actor, detail names the user and what was done.
func (a *Authenticator) recordUser(ctx context.Context, by snapdeck.User, action activity.Action, detail string, err error) {
	a.activity.Record(ctx, activity.Entry{Actor: by.Email, Action: action, Detail: detail, Err: err})
}

// FindUser returns the user with the given id: the signed-in user of a
// session.
func (a *Authenticator) FindUser(ctx context.Context, id int64) (snapdeck.User, error) {
	return a.db.FindUser(ctx, id)
}

// FindUsers lists the console's users, for the admin's user page.
func (a *Authenticator) FindUsers(ctx context.Context) ([]snapdeck.User, error) {
	return a.db.FindUsers(ctx)
}
