package server

import (
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/planet"
	"github.com/planetlab/pl/internal/plc/service"
)

// MetricsPath is where PLC serves Prometheus metrics.
const MetricsPath = "/metrics"

// metricsHandler serves the planet table as Prometheus metrics: the node
// series to anyone (node figures are public, as CoMon's were), the slice
// series too when the scrape carries an admin's bearer token
// (Prometheus' authorization.credentials).
func metricsHandler(reg *service.Service) http.Handler {
	public := prometheus.NewRegistry()
	public.MustRegister(planet.NewCollector(reg.Planet(), false))
	admin := prometheus.NewRegistry()
	admin.MustRegister(planet.NewCollector(reg.Planet(), true), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	pub := promhttp.HandlerFor(public, promhttp.HandlerOpts{})
	adm := promhttp.HandlerFor(admin, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "metrics are read-only", http.StatusMethodNotAllowed)
			return
		}
		scheme, tok, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
		if strings.EqualFold(scheme, "Bearer") && tok != "" {
			c, err := reg.Authenticate(r.Context(), core.Credentials{Method: "session", Session: strings.TrimSpace(tok)}, nil)
			if err != nil {
				http.Error(w, "metrics: "+err.Error(), http.StatusUnauthorized)
				return
			}
			if c.HasRole(core.RoleAdmin) {
				adm.ServeHTTP(w, r)
				return
			}
		}
		pub.ServeHTTP(w, r)
	})
}
