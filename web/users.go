package web

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/views"
)

func (s *Server) usersPage(c echo.Context, status int, v views.Users) error {
	users, err := s.deps.Store.FindUsers(c.Request().Context())
	if err != nil {
		return err
	}
	v.Users = users
	return render(c, status, views.UsersPage(s.page(c, "Users", "users"), v))
}

func (s *Server) listUsers(c echo.Context) error {
	return s.usersPage(c, http.StatusOK, views.Users{Role: snapdeck.RoleMember})
}

func (s *Server) addUser(c echo.Context) error {
	email, role := c.FormValue("email"), snapdeck.Role(c.FormValue("role"))
	u, err := s.deps.Auth.AddUser(c.Request().Context(), email, c.FormValue("password"), role)
	s.recordUser(c, "user.add", fmt.Sprintf("%s as %s", email, role), err)
	if code := snapdeck.ErrorCode(err); code == snapdeck.Invalid || code == snapdeck.Conflict {
		return s.usersPage(c, http.StatusBadRequest, views.Users{Email: email, Role: role, Error: snapdeck.ErrorMessage(err)})
	}
	if err != nil {
		return err
	}
	s.flash(c, "ok", fmt.Sprintf("Added %s as %s.", u.Email, u.Role))
	return c.Redirect(http.StatusSeeOther, "/users")
}

// userChange runs a change to the user named in the path and records it
// in the activity log as action, with what was done to whom and how it
// ended. change gets the user as they were and returns the flash message
// and what it did, for the log.
func (s *Server) userChange(c echo.Context, action string, change func(u snapdeck.User) (msg, did string, err error)) error {
	id, err := strconv.ParseInt(c.Param("uid"), 10, 64)
	var u snapdeck.User
	if err != nil {
		err = snapdeck.Errorf(snapdeck.NotFound, "No such user.")
	} else {
		u, err = s.deps.Store.FindUser(c.Request().Context(), id)
	}
	if err != nil {
		s.recordUser(c, action, "user "+c.Param("uid"), err)
		return err
	}
	msg, did, err := change(u)
	s.recordUser(c, action, did, err)
	if snapdeck.ErrorCode(err) == snapdeck.Conflict || snapdeck.ErrorCode(err) == snapdeck.Invalid {
		return s.usersPage(c, http.StatusBadRequest, views.Users{Role: snapdeck.RoleMember, Error: snapdeck.ErrorMessage(err)})
	}
	if err != nil {
		return err
	}
	s.flash(c, "ok", msg)
	return c.Redirect(http.StatusSeeOther, "/users")
}

func (s *Server) setRole(c echo.Context) error {
	return s.userChange(c, "user.role", func(u snapdeck.User) (string, string, error) {
		role := snapdeck.Role(c.FormValue("role"))
		did := fmt.Sprintf("%s from %s to %s", u.Email, u.Role, role)
		if !role.Valid() {
			return "", did, snapdeck.FieldError("role", "Choose a role: admin, member or viewer.")
		}
		return fmt.Sprintf("Role changed to %s.", role), did, s.deps.Store.SetUserRole(c.Request().Context(), u.ID, role)
	})
}

func (s *Server) disableUser(c echo.Context) error {
	return s.userChange(c, "user.disable", func(u snapdeck.User) (string, string, error) {
		if me := currentUser(c); me != nil && me.ID == u.ID {
			return "", u.Email, snapdeck.Errorf(snapdeck.Conflict, "You cannot disable yourself.")
		}
		return "User disabled; their sessions have ended.", u.Email, s.deps.Store.SetUserDisabled(c.Request().Context(), u.ID, true)
	})
}

func (s *Server) enableUser(c echo.Context) error {
	return s.userChange(c, "user.enable", func(u snapdeck.User) (string, string, error) {
		return "User enabled.", u.Email, s.deps.Store.SetUserDisabled(c.Request().Context(), u.ID, false)
	})
}

// recordUser writes an admin's change to a user to the activity log: the
// admin is the actor, detail names the user and what was done. With err
// the change was refused (an error of ours that is not Internal) or
// failed, and the error's message says why. A failure to record is
// logged: the change itself already happened or was refused.
func (s *Server) recordUser(c echo.Context, action, detail string, err error) {
	// A refused add names the address as typed, which may be anything up
	// to the form limit; 300 characters hold any valid one (254 at most).
	if r := []rune(detail); len(r) > 300 {
		detail = string(r[:300]) + "…"
	}
	e := &snapdeck.Event{Actor: currentUser(c).Email, Action: action, Outcome: snapdeck.OutcomeOK, Detail: detail}
	if err != nil {
		e.Outcome = snapdeck.OutcomeFailed
		if _, ok := snapdeck.AsError(err); ok && snapdeck.ErrorCode(err) != snapdeck.Internal {
			e.Outcome = snapdeck.OutcomeRefused
		}
		e.Detail = detail + ": " + snapdeck.ErrorMessage(err)
	}
	if rerr := s.deps.Store.RecordEvent(c.Request().Context(), e); rerr != nil {
		s.logger.Error("record user change", "user", e.Actor, "action", action, "err", rerr)
	}
}
