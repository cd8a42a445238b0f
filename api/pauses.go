package api

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/credsync/credsync/core"
)

// Emergency pauses (DESIGN.md): POST /v1/pauses starts one, GET lists them, DELETE ends one.
// Every route needs the admin action; a token scoped to some sources may pause only one of
// them, and sees only the pauses that hold its sources.

func (s *Server) routesPauses(e *echo.Echo) {
	e.POST("/v1/pauses", s.createPause, s.authenticate)
	e.GET("/v1/pauses", s.listPauses, s.authenticate)
	e.DELETE("/v1/pauses/:id", s.endPause, s.authenticate)
}

// pauseRequest is the body of POST /v1/pauses: neither platform nor source pauses everything.
type pauseRequest struct {
	Platform string `json:"platform"`
	Source   string `json:"source"`
	Reason   string `json:"reason"`
}

// PausesResponse is the answer to GET /v1/pauses.
type PausesResponse struct {
	Pauses []core.Pause `json:"pauses"`
}

// allowPause returns 403 unless the request's token may start or end p: admin, and a token
// scoped to some sources only a pause of one of them (any other holds sources it may not touch).
func allowPause(c echo.Context, p core.Pause) error {
	if err := allow(c, ActionAdmin); err != nil {
		return err
	}
	if sc := scopeOf(c); !sc.All() && (p.Source == "" || !sc.Covers(p.Source)) {
		return forbidden(c, "pause "+p.Scope())
	}
	return nil
}

// pausesInScope keeps the pauses that hold a source sc covers.
func pausesInScope(sc Scope, ps []core.Pause) []core.Pause {
	out := make([]core.Pause, 0, len(ps))
	for _, p := range ps {
		if sc.All() || p.Source == "" || sc.Covers(p.Source) {
			out = append(out, p)
		}
	}
	return out
}

func (s *Server) createPause(c echo.Context) error {
	if err := allow(c, ActionAdmin); err != nil {
		return err
	}
	body, err := s.readJSON(c)
	if err != nil {
		return err
	}
	var req pauseRequest
	if err := decodeBody(body, &req, "invalid pause"); err != nil {
		return err
	}
	if err := allowPause(c, core.Pause{Platform: req.Platform, Source: req.Source}); err != nil {
		return err
	}
	actor, _ := c.Get(ctxActor).(string)
	p, err := s.eng.StartPause(c.Request().Context(), core.PauseRequest{Platform: req.Platform, Source: req.Source, Reason: req.Reason, Actor: actor})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, p)
}

// listPauses answers the active pauses; ?all=true adds the ended ones, newest first.
func (s *Server) listPauses(c echo.Context) error {
	if err := allow(c, ActionAdmin); err != nil {
		return err
	}
	all := false
	if v := c.QueryParam("all"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fail(http.StatusBadRequest, "bad_request", "all="+strconv.Quote(clip(v, 20))+": true or false")
		}
		all = b
	}
	ps, err := s.eng.Pauses(c.Request().Context(), !all)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, PausesResponse{Pauses: pausesInScope(scopeOf(c), ps)})
}

func (s *Server) endPause(c echo.Context) error {
	if err := allow(c, ActionAdmin); err != nil {
		return err
	}
	ctx := c.Request().Context()
	id := c.Param("id")
	if !scopeOf(c).All() {
		ps, err := s.eng.Pauses(ctx, true)
		if err != nil {
			return err
		}
		for _, p := range ps {
			if p.ID == id {
				if err := allowPause(c, p); err != nil {
					return err
				}
			}
		}
	}
	actor, _ := c.Get(ctxActor).(string)
	p, err := s.eng.EndPause(ctx, id, actor)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}
