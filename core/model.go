package core

import (
	"sync"
	"time"
)

// RotationStatus is the state of a whole rotation.
type RotationStatus string

// Rotation statuses.
const (
	RotationPending   RotationStatus = "pending"
	RotationRunning   RotationStatus = "running"
	RotationSucceeded RotationStatus = "succeeded"
	RotationPartial   RotationStatus = "partial"
	RotationFailed    RotationStatus = "failed"
	// RotationSuperseded: every target was taken over by a newer rotation of the source. Nothing
	// went wrong, so it is neither failed nor partial.
	RotationSuperseded RotationStatus = "superseded"
)

// Finished reports whether the rotation has ended.
func (s RotationStatus) Finished() bool {
	return s == RotationSucceeded || s == RotationPartial || s == RotationFailed || s == RotationSuperseded
}

// TargetStatus is the state of one target within a rotation.
type TargetStatus string

// Target statuses.
const (
	TargetPending    TargetStatus = "pending"
	TargetRunning    TargetStatus = "running"
	TargetSucceeded  TargetStatus = "succeeded"
	TargetFailed     TargetStatus = "failed"
	TargetSuperseded TargetStatus = "superseded"
)

// Finished reports whether the target has ended.
func (s TargetStatus) Finished() bool {
	return s == TargetSucceeded || s == TargetFailed || s == TargetSuperseded
}

// Platform is one vendor account and the limits credsync keeps towards it.
type Platform struct {
	Name           string
	Vendor         string
	Timeout        time.Duration // per attempt
	MaxAttempts    int           // per call, including the first
	MaxConcurrency int           // calls in flight at once, across all rotations
	// RateLimit bounds calls started per second to this platform (token bucket; 0: no limit),
	// with bursts of up to Burst calls (default: max(1, RateLimit)).
	RateLimit float64
	Burst     int
	// Admission is the gate every call to the platform passes (see Admission). The adapters'
	// HTTP clients and the engine must share it; nil: the engine makes one.
	Admission *Admission
}

// WithDefaults returns p with every zero limit set to its default.
func (p Platform) WithDefaults() Platform {
	if p.Timeout <= 0 {
		p.Timeout = DefaultTimeout
	}
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.MaxConcurrency <= 0 {
		p.MaxConcurrency = DefaultMaxConcurrency
	}
	if p.RateLimit > 0 && p.Burst <= 0 {
		p.Burst = max(1, int(p.RateLimit))
	}
	return p
}

// Target is one copy of a source's credential on one platform.
type Target struct {
	Name     string
	Platform string
	Vendor   string
	Adapter  Adapter
	// VerifyEvery, when more than 0, runs the target's check on that schedule (health.go).
	VerifyEvery time.Duration
}

// Source is one credential that lives in several platforms. It is not changed once an engine
// uses it.
type Source struct {
	Name    string
	Targets []*Target
	// Rotation, when set, makes credsync generate the credential itself (see SourceRotation).
	Rotation *SourceRotation

	once   sync.Once
	byName map[string]*Target
}

// Target returns the target of that name, or nil: a map lookup, built on first use (a source
// may have 100,000 targets).
func (s *Source) Target(name string) *Target {
	s.once.Do(func() {
		s.byName = make(map[string]*Target, len(s.Targets))
		for _, t := range s.Targets {
			s.byName[t.Name] = t
		}
	})
	return s.byName[name]
}

// Rotation is one request to push a new credential to a source's targets, and its outcome.
type Rotation struct {
	ID     string `json:"id"`
	Source string `json:"source"`
	// Seq orders the rotations of one source (1, 2, ...): a higher Seq supersedes a lower one.
	Seq        int64          `json:"seq"`
	Status     RotationStatus `json:"status"`
	CreatedAt  time.Time      `json:"created_at"`
	FinishedAt *time.Time     `json:"finished_at"`
	Actor      string         `json:"actor,omitempty"`
	Type       CredentialType `json:"credential_type"`
	// Targets is every target (the engine's own reads), or one page of them (GET
	// /v1/rotations/{id}: see TargetPage), or none (lists: see TargetCounts).
	Targets []TargetResult `json:"targets"`
	// TargetCounts is how many targets the rotation has in each status; set by the reads
	// that do not return every target (pages and lists), so that a 100,000-target rotation is
	// summarised in a few bytes.
	TargetCounts map[TargetStatus]int `json:"target_counts,omitempty"`
	// NextTargets, on a page, is the cursor of the next page ("" on the last).
	NextTargets string `json:"next_targets,omitempty"`
	// SourceRotation is set on a rotation credsync generated itself (generate: true).
	SourceRotation *SourceRotationState `json:"source_rotation,omitempty"`
}

// TargetResult is one target's part of a rotation.
type TargetResult struct {
	Name       string       `json:"name"`
	Platform   string       `json:"platform"`
	Vendor     string       `json:"vendor"`
	Status     TargetStatus `json:"status"`
	Verified   bool         `json:"verified"`
	Warning    string       `json:"warning,omitempty"`
	Attempts   int          `json:"attempts"`
	Error      *Error       `json:"error"`
	StartedAt  *time.Time   `json:"started_at,omitempty"`
	FinishedAt *time.Time   `json:"finished_at,omitempty"`
	// User, on a generated rotation, is the source user this target holds now: the staged
	// user once it succeeded, the previous one while it did not.
	User string `json:"user,omitempty"`
	// Paused: a pause holds the target; no vendor call to it starts until the pause ends.
	Paused bool `json:"paused,omitempty"`
}

// Clone returns a deep copy, safe to hand out while the engine keeps working on the original.
func (r *Rotation) Clone() *Rotation {
	c := r.cloneHead()
	c.Targets = make([]TargetResult, len(r.Targets))
	for i, t := range r.Targets {
		c.Targets[i] = t.clone()
	}
	return c
}

// clone copies a target result deeply.
func (t TargetResult) clone() TargetResult {
	if t.Error != nil {
		e := *t.Error
		t.Error = &e
	}
	return t
}

// cloneHead copies everything of the rotation but its targets (nil in the copy).
func (r *Rotation) cloneHead() *Rotation {
	c := *r
	c.Targets = nil
	if r.SourceRotation != nil {
		sr := *r.SourceRotation
		c.SourceRotation = &sr
	}
	if r.TargetCounts != nil {
		c.TargetCounts = make(map[TargetStatus]int, len(r.TargetCounts))
		for k, v := range r.TargetCounts {
			c.TargetCounts[k] = v
		}
	}
	return &c
}

// Outcome derives the rotation status from its targets' statuses.
func Outcome(targets []TargetResult) RotationStatus {
	succeeded, superseded, finished := 0, 0, 0
	for _, t := range targets {
		if t.Status.Finished() {
			finished++
		}
		switch t.Status {
		case TargetSucceeded:
			succeeded++
		case TargetSuperseded:
			superseded++
		}
	}
	switch {
	case finished < len(targets):
		return RotationRunning
	case succeeded == len(targets):
		return RotationSucceeded
	case superseded == len(targets):
		return RotationSuperseded
	case succeeded+superseded == len(targets):
		// What this rotation still owned landed; the rest belongs to newer rotations.
		return RotationSucceeded
	case succeeded > 0:
		return RotationPartial
	default:
		return RotationFailed
	}
}
