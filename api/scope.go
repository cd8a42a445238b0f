package api

import (
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
)

// Action is one kind of thing a token may do (DESIGN.md, access scopes).
type Action string

// The actions: rotate (submit, dry run), read (rotations, sources, audit, the status page),
// retry, and admin (pauses, notifications).
const (
	ActionRotate Action = "rotate"
	ActionRead   Action = "read"
	ActionRetry  Action = "retry"
	ActionAdmin  Action = "admin"
)

// Actions are every action, in the order the documentation lists them.
var Actions = []Action{ActionRotate, ActionRead, ActionRetry, ActionAdmin}

// Scope bounds what a token may touch: Sources are glob patterns (path.Match: * ? [...])
// over source names, none meaning every source; Actions, none meaning all four.
type Scope struct {
	Sources []string
	Actions []Action
}

// Check says what is wrong with the scope: a pattern path.Match cannot read, an unknown action.
func (sc Scope) Check() error {
	for _, p := range sc.Sources {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return fmt.Errorf("sources: %q is not a glob pattern (use * ? and [...], e.g. \"warehouse-*\")", p)
		}
	}
	for _, a := range sc.Actions {
		if !slices.Contains(Actions, a) {
			return fmt.Errorf("actions: %q is not one of rotate, read, retry, admin", a)
		}
	}
	return nil
}

// All reports whether the scope covers every source.
func (sc Scope) All() bool { return len(sc.Sources) == 0 }

// Covers reports whether the scope covers source.
func (sc Scope) Covers(source string) bool {
	if sc.All() {
		return true
	}
	for _, p := range sc.Sources {
		if ok, _ := path.Match(p, source); ok {
			return true
		}
	}
	return false
}

// Allows reports whether the scope allows action a.
func (sc Scope) Allows(a Action) bool { return len(sc.Actions) == 0 || slices.Contains(sc.Actions, a) }

// Filter returns the names the scope covers; nil when it covers every source (no filter).
func (sc Scope) Filter(names []string) []string {
	if sc.All() {
		return nil
	}
	out := []string{}
	for _, n := range names {
		if sc.Covers(n) {
			out = append(out, n)
		}
	}
	return out
}

func (sc Scope) String() string {
	src, act := "every source", "every action"
	if !sc.All() {
		src = "sources " + strings.Join(sc.Sources, ", ")
	}
	if len(sc.Actions) > 0 {
		parts := make([]string, len(sc.Actions))
		for i, a := range sc.Actions {
			parts[i] = string(a)
		}
		act = "actions " + strings.Join(parts, ", ")
	}
	return src + "; " + act
}

const ctxScope = "credsync.scope"

// scopeOf is the scope of the token that authenticated the request.
func scopeOf(c echo.Context) Scope {
	sc, _ := c.Get(ctxScope).(Scope)
	return sc
}

// forbidden is the 403 for a token whose scope does not cover what it asked.
func forbidden(c echo.Context, what string) *apiError {
	actor, _ := c.Get(ctxActor).(string)
	return fail(http.StatusForbidden, "forbidden", fmt.Sprintf("token %q may not %s: its scope is %s; use a token whose scope covers it", actor, what, scopeOf(c)))
}

// allow returns 403 unless the request's token may do a.
func allow(c echo.Context, a Action) error {
	if !scopeOf(c).Allows(a) {
		return forbidden(c, string(a))
	}
	return nil
}

// allowSource returns 403 unless the request's token may do a on source.
func allowSource(c echo.Context, a Action, source string) error {
	if err := allow(c, a); err != nil {
		return err
	}
	if source != "" && !scopeOf(c).Covers(source) { // no source: the engine says it is required
		return forbidden(c, fmt.Sprintf("%s source %q", a, source))
	}
	return nil
}

// visibleSources is the Sources filter of a listing for the request's token (nil: all).
func (s *Server) visibleSources(c echo.Context) []string {
	return scopeOf(c).Filter(s.eng.SourceNames())
}
