package api

import "github.com/labstack/echo/v4"

// routesStatus registers the read-only status page at /.
func (s *Server) routesStatus(e *echo.Echo) { _ = e }
