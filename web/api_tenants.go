package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// tenantName is the name the console's one tenant goes by.
const tenantName = "snapdeck"

// apiTenant is a tenant as GET /v1/tenants/{id} shows it.
type apiTenant struct {
	ID                     string              `json:"id"`
	Name                   string              `json:"name"`
	InstanceConfigurations []apiInstanceConfig `json:"instance_configurations"`
}

// apiInstanceConfig is one kind of database the tenant may create.
type apiInstanceConfig struct {
	CloudProvider string `json:"cloud_provider"`
	Memory        string `json:"memory"`
	Region        string `json:"region"`
	RegionName    string `json:"region_name"`
	Storage       string `json:"storage"`
	Type          string `json:"type"`
	Version       string `json:"version"`
}

func (a *api) listTenants(c echo.Context) error {
	id, err := a.tenant(c)
	if err != nil {
		return err
	}
	return data(c, http.StatusOK, []map[string]string{{"id": id, "name": tenantName}})
}

// findTenant checks that the path names the console's tenant.
func (a *api) findTenant(c echo.Context, id string) (string, error) {
	tid, err := a.tenant(c)
	if err != nil {
		return "", err
	}
	if id != tid {
		return "", &snapdeck.Error{Code: snapdeck.NotFound, Reason: "tenant-not-found", Message: "Tenant not found: " + id}
	}
	return tid, nil
}

func (a *api) getTenant(c echo.Context) error {
	id, err := a.findTenant(c, c.Param("tid"))
	if err != nil {
		return err
	}
	t := apiTenant{ID: id, Name: tenantName}
	for _, p := range snapdeck.Plans {
		t.InstanceConfigurations = append(t.InstanceConfigurations, apiInstanceConfig{
			CloudProvider: defaultPlacement.CloudProvider, Memory: defaultPlacement.Memory,
			Region: defaultPlacement.Region, RegionName: "This console", Storage: defaultPlacement.Storage,
			Type: planType(p), Version: "5",
		})
	}
	return data(c, http.StatusOK, t)
}

// metricsIntegration points at the console's Prometheus endpoint, which
// covers every database of the tenant.
func (a *api) metricsIntegration(c echo.Context) error {
	if _, err := a.findTenant(c, c.Param("tid")); err != nil {
		return err
	}
	return data(c, http.StatusOK, map[string]string{"endpoint": a.s.publicURL(c) + "/metrics"})
}
