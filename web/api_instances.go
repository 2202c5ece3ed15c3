package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// defaultPlacement is what the instance object shows for values a client
// did not send. Every database lives on this machine; "local" says so.
var defaultPlacement = snapdeck.Placement{CloudProvider: "local", Region: "local", Memory: "1GB", Storage: "2GB"}

// planType maps a plan to Aura's instance type.
func planType(p snapdeck.Plan) string { return string(p) + "-db" }

// typePlan maps Aura's instance type to a plan.
func typePlan(t string) (snapdeck.Plan, bool) {
	p := snapdeck.Plan(strings.TrimSuffix(t, "-db"))
	return p, strings.HasSuffix(t, "-db") && p.Valid()
}

// apiStatus maps a database status to Aura's instance status.
func apiStatus(s snapdeck.Status) string {
	switch s {
	case snapdeck.StatusDeleting:
		return "destroying"
	case snapdeck.StatusFailed:
		// Aura has no plain "failed"; a database fails only while its data
		// is being made, which Aura calls loading.
		return "loading failed"
	}
	return string(s)
}

// apiInstance is Aura's instance object. Every field is always present and
// never null; username and password appear only in the create reply.
type apiInstance struct {
	ID                    string `json:"id"`
	Name                  string `json:"name"`
	Status                string `json:"status"`
	TenantID              string `json:"tenant_id"`
	CloudProvider         string `json:"cloud_provider"`
	Region                string `json:"region"`
	Type                  string `json:"type"`
	Memory                string `json:"memory"`
	Storage               string `json:"storage"`
	ConnectionURL         string `json:"connection_url"`
	MetricsIntegrationURL string `json:"metrics_integration_url"`
	CustomerManagedKeyID  string `json:"customer_managed_key_id"`
	CreatedAt             string `json:"created_at"`
	Username              string `json:"username,omitempty"`
	Password              string `json:"password,omitempty"`
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// instance renders a database as Aura's instance object; overwriting
// shows Aura's "overwriting" in place of the status (see overwritten).
func (a *api) instance(c echo.Context, d snapdeck.Database, overwriting bool) (apiInstance, error) {
	tid, err := a.tenant(c)
	if err != nil {
		return apiInstance{}, err
	}
	status := apiStatus(d.Status)
	if overwriting {
		status = statusOverwriting
	}
	base, p := a.s.publicURL(c), d.Placement
	return apiInstance{
		ID: d.ID, Name: d.Name, Status: status, TenantID: tid,
		CloudProvider: orDefault(p.CloudProvider, defaultPlacement.CloudProvider),
		Region:        orDefault(p.Region, defaultPlacement.Region),
		Type:          planType(d.Plan),
		Memory:        orDefault(p.Memory, defaultPlacement.Memory),
		Storage:       orDefault(p.Storage, defaultPlacement.Storage),
		ConnectionURL: a.s.connectionURL(c, d.ID), MetricsIntegrationURL: base + "/metrics",
		CreatedAt: d.CreatedAt.UTC().Truncate(time.Second).Format(time.RFC3339),
	}, nil
}

// findInstance returns the database named in the path.
func (a *api) findInstance(c echo.Context) (snapdeck.Database, error) {
	id := c.Param("id")
	if !snapdeck.ValidDatabaseID(id) {
		return snapdeck.Database{}, &snapdeck.Error{Code: snapdeck.NotFound, Reason: "db-not-found",
			Message: "DB not found: " + id}
	}
	return a.s.deps.Databases.Find(c.Request().Context(), id)
}

// reply answers with the instance object of d.
func (a *api) reply(c echo.Context, status int, d snapdeck.Database) error {
	over, err := a.overwritten(c.Request().Context(), d)
	if err != nil {
		return err
	}
	inst, err := a.instance(c, d, over[d.ID])
	if err != nil {
		return err
	}
	return data(c, status, inst)
}

func (a *api) listInstances(c echo.Context) error {
	if tid := c.QueryParam("tenantId"); tid != "" {
		if _, err := a.findTenant(c, tid); err != nil {
			return err
		}
	}
	ctx := c.Request().Context()
	dbs, err := a.s.deps.Databases.List(ctx)
	if err != nil {
		return err
	}
	over, err := a.overwritten(ctx, dbs...)
	if err != nil {
		return err
	}
	out := make([]apiInstance, 0, len(dbs))
	for _, d := range dbs {
		inst, err := a.instance(c, d, over[d.ID])
		if err != nil {
			return err
		}
		out = append(out, inst)
	}
	return data(c, http.StatusOK, out)
}

func (a *api) getInstance(c echo.Context) error {
	d, err := a.findInstance(c)
	if err != nil {
		return err
	}
	return a.reply(c, http.StatusOK, d)
}

// decodeJSON reads a JSON object body into v. Unknown fields are ignored:
// Aura clients send options snapdeck has no use for. Every failure is a
// 400 naming the field when there is one; never 415 or 422, which Aura
// clients do not handle. An empty body decodes as {} when allowEmpty.
func decodeJSON(c echo.Context, v any, allowEmpty bool) error {
	body, err := io.ReadAll(c.Request().Body)
	if isBodyTooLarge(err) {
		return tooLarge()
	}
	if err != nil {
		return &snapdeck.Error{Code: snapdeck.Invalid, Reason: "invalid-request", Message: "The request body could not be read.", Err: err}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if allowEmpty {
			return nil
		}
		return &snapdeck.Error{Code: snapdeck.Invalid, Reason: "invalid-request", Message: "Send a JSON object as the request body."}
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return &snapdeck.Error{Code: snapdeck.Invalid, Reason: "invalid-request", Field: te.Field,
				Message: fmt.Sprintf("%s must be a %s.", te.Field, te.Type.Kind())}
		}
		return &snapdeck.Error{Code: snapdeck.Invalid, Reason: "invalid-request", Message: "The request body is not a valid JSON object."}
	}
	return nil
}

// createRequest is the body of POST /v1/instances, as aura-cli and the
// Terraform provider send it.
type createRequest struct {
	Name             string `json:"name"`
	Type             string `json:"type"`
	TenantID         string `json:"tenant_id"`
	CloudProvider    string `json:"cloud_provider"`
	Region           string `json:"region"`
	Memory           string `json:"memory"`
	Storage          string `json:"storage"`
	Version          string `json:"version"`
	SourceInstanceID string `json:"source_instance_id"`
	SourceSnapshotID string `json:"source_snapshot_id"`
}

// fromSnapshot reports whether the request creates the instance from a
// snapshot rather than empty.
func (r createRequest) fromSnapshot() bool {
	return r.SourceInstanceID != "" || r.SourceSnapshotID != ""
}

func (a *api) createInstance(c echo.Context) error {
	var req createRequest
	cr := a.createRequest(c, &req)
	out, err := a.s.deps.Databases.Create(c.Request().Context(), actor(c), cr)
	if err != nil {
		return err
	}
	// A database just made is creating or running, never overwritten.
	inst, err := a.instance(c, out.Database, false)
	if err != nil {
		return err
	}
	inst.Username, inst.Password = out.Credentials.Username, out.Credentials.Password
	return data(c, http.StatusAccepted, inst)
}

// createRequest reads the body of a POST /v1/instances into the domain's
// request; what cannot be read is the request's BadInput, which Create
// refuses and records.
func (a *api) createRequest(c echo.Context, req *createRequest) database.CreateRequest {
	cr := database.CreateRequest{}
	if err := decodeJSON(c, req, false); err != nil {
		cr.BadInput = err
		return cr
	}
	cr = database.CreateRequest{Name: req.Name, FromDatabase: req.SourceInstanceID, FromSnapshot: req.SourceSnapshotID,
		Placement: snapdeck.Placement{CloudProvider: req.CloudProvider, Region: req.Region, Memory: req.Memory, Storage: req.Storage}}
	if req.TenantID != "" {
		if _, err := a.findTenant(c, req.TenantID); err != nil {
			cr.BadInput = err
			return cr
		}
	}
	plan, ok := typePlan(req.Type)
	cr.Plan = plan
	switch {
	case !ok:
		cr.BadInput = snapdeck.FieldError("type", "type must be free-db, professional-db or enterprise-db.")
	case req.fromSnapshot() && req.SourceInstanceID == "":
		cr.BadInput = snapdeck.FieldError("source_instance_id", "Send source_instance_id with source_snapshot_id: the instance the snapshot is of.")
	case req.fromSnapshot() && req.SourceSnapshotID == "":
		cr.BadInput = snapdeck.FieldError("source_snapshot_id", "Send source_snapshot_id with source_instance_id: the snapshot to create the instance from.")
	}
	return cr
}

// updateRequest is the body of PATCH /v1/instances/{id}; absent fields stay.
type updateRequest struct {
	Name    *string `json:"name"`
	Memory  *string `json:"memory"`
	Storage *string `json:"storage"`
}

func (a *api) updateInstance(c echo.Context) error {
	var req updateRequest
	err := decodeJSON(c, &req, true)
	d, err := a.s.deps.Databases.Update(c.Request().Context(), actor(c), c.Param("id"),
		database.Changes{Name: req.Name, Memory: req.Memory, Storage: req.Storage, BadInput: err})
	if err != nil {
		return err
	}
	return a.reply(c, http.StatusAccepted, d)
}

func (a *api) deleteInstance(c echo.Context) error {
	// Deletion finishes before the reply; the object shows Aura's
	// in-between status, and the next GET answers 404. DELETE is its own
	// confirmation: no name is typed.
	d, err := a.s.deps.Databases.Delete(c.Request().Context(), actor(c), c.Param("id"), nil)
	if err != nil {
		return err
	}
	return a.reply(c, http.StatusAccepted, d)
}

func (a *api) pauseInstance(c echo.Context) error {
	d, err := a.s.deps.Databases.Pause(c.Request().Context(), actor(c), c.Param("id"))
	if err != nil {
		return err
	}
	return a.reply(c, http.StatusAccepted, d)
}

func (a *api) resumeInstance(c echo.Context) error {
	d, err := a.s.deps.Databases.Resume(c.Request().Context(), actor(c), c.Param("id"))
	if err != nil {
		return err
	}
	return a.reply(c, http.StatusAccepted, d)
}
