package web

import (
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsHandler serves /metrics in Prometheus' text format. It is public,
// like /healthz: a scraper cannot sign in, and the figures (counts, sizes,
// database ids) say nothing of the data. Put the console behind a proxy
// that restricts /metrics if the ids must stay private.
func (s *Server) metricsHandler() echo.HandlerFunc {
	reg := prometheus.NewRegistry()
	if s.deps.Metrics != nil {
		reg = s.deps.Metrics.Registry
	}
	return echo.WrapHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
}
