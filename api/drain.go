package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// ShuttingDown marks the gateway as stopping. From then on /readyz answers 503 shutting_down,
// so load balancers and Kubernetes take this replica out of rotation, while every other route,
// /healthz included, goes on answering as before: requests already on their way are served.
func (s *Server) ShuttingDown() { s.shuttingDown.Store(true) }

// readyUnlessShuttingDown answers /readyz with 503 once ShuttingDown was called.
func (s *Server) readyUnlessShuttingDown(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.shuttingDown.Load() {
			return fail(http.StatusServiceUnavailable, "shutting_down", "the gateway is shutting down: send requests to another replica")
		}
		return next(c)
	}
}
