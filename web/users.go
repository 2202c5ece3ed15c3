package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/views"
)

func (s *Server) usersPage(c echo.Context, status int, v views.Users) error {
	users, err := s.deps.Auth.FindUsers(c.Request().Context())
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
	u, err := s.deps.Auth.Invite(c.Request().Context(), *currentUser(c), email, c.FormValue("password"), role)
	if code := snapdeck.ErrorCode(err); code == snapdeck.Invalid || code == snapdeck.Conflict {
		return s.usersPage(c, http.StatusBadRequest, views.Users{Email: email, Role: role, Error: snapdeck.ErrorMessage(err)})
	}
	if err != nil {
		return err
	}
	s.flash(c, "ok", fmt.Sprintf("Added %s as %s.", u.Email, u.Role))
	return c.Redirect(http.StatusSeeOther, "/users")
}

// userChange runs a change to the user named in the path (which records
// it in the activity log) and shows how it went.
func (s *Server) userChange(c echo.Context, msg string,
	change func(ctx context.Context, by snapdeck.User, id int64) (snapdeck.User, error)) error {
	// An id that is no number names no user: 0 is never one, and the
	// change records the refusal as for any unknown id.
	id, _ := strconv.ParseInt(c.Param("uid"), 10, 64)
	_, err := change(c.Request().Context(), *currentUser(c), id)
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
	role := snapdeck.Role(c.FormValue("role"))
	return s.userChange(c, fmt.Sprintf("Role changed to %s.", role),
		func(ctx context.Context, by snapdeck.User, id int64) (snapdeck.User, error) {
			return s.deps.Auth.SetRole(ctx, by, id, role)
		})
}

func (s *Server) disableUser(c echo.Context) error {
	return s.userChange(c, "User disabled; their sessions have ended.",
		func(ctx context.Context, by snapdeck.User, id int64) (snapdeck.User, error) {
			return s.deps.Auth.SetDisabled(ctx, by, id, true)
		})
}

func (s *Server) enableUser(c echo.Context) error {
	return s.userChange(c, "User enabled.", func(ctx context.Context, by snapdeck.User, id int64) (snapdeck.User, error) {
		return s.deps.Auth.SetDisabled(ctx, by, id, false)
	})
}
