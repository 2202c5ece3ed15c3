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
	if code := snapdeck.ErrorCode(err); code == snapdeck.Invalid || code == snapdeck.Conflict {
		return s.usersPage(c, http.StatusBadRequest, views.Users{Email: email, Role: role, Error: snapdeck.ErrorMessage(err)})
	}
	if err != nil {
		return err
	}
	s.flash(c, "ok", fmt.Sprintf("Added %s as %s.", u.Email, u.Role))
	return c.Redirect(http.StatusSeeOther, "/users")
}

// userChange runs a change to the user named in the path.
func (s *Server) userChange(c echo.Context, change func(id int64) (string, error)) error {
	id, err := strconv.ParseInt(c.Param("uid"), 10, 64)
	if err != nil {
		return snapdeck.Errorf(snapdeck.NotFound, "No such user.")
	}
	msg, err := change(id)
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
	return s.userChange(c, func(id int64) (string, error) {
		role := snapdeck.Role(c.FormValue("role"))
		if !role.Valid() {
			return "", snapdeck.FieldError("role", "Choose a role: admin, member or viewer.")
		}
		return fmt.Sprintf("Role changed to %s.", role), s.deps.Store.SetUserRole(c.Request().Context(), id, role)
	})
}

func (s *Server) disableUser(c echo.Context) error {
	return s.userChange(c, func(id int64) (string, error) {
		if u := currentUser(c); u != nil && u.ID == id {
			return "", snapdeck.Errorf(snapdeck.Conflict, "You cannot disable yourself.")
		}
		return "User disabled; their sessions have ended.", s.deps.Store.SetUserDisabled(c.Request().Context(), id, true)
	})
}

func (s *Server) enableUser(c echo.Context) error {
	return s.userChange(c, func(id int64) (string, error) {
		return "User enabled.", s.deps.Store.SetUserDisabled(c.Request().Context(), id, false)
	})
}
