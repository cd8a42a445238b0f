package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Events are what credsync tells the outside world (DESIGN.md "Notifications"): each is
// written to a durable outbox in the store (Store.EnqueueEvent) in the same place the engine
// records what happened, with one delivery for every configured notification that wants it
// (delivery.go), and a delivery service (package notify) sends it, at least once. An event never
// holds a secret.

// Event types.
const (
	EventRotationSucceeded  = "rotation.succeeded"
	EventRotationPartial    = "rotation.partial"
	EventRotationFailed     = "rotation.failed"
	EventRotationSuperseded = "rotation.superseded"
	EventTargetDrift        = "target.drift"
	EventTargetRecovered    = "target.recovered"
	EventCredentialRetired  = "credential.retired"
	EventPauseStarted       = "pause.started"
	EventPauseEnded         = "pause.ended"
)

// EventTypes lists every event type.
func EventTypes() []string {
	return []string{EventRotationSucceeded, EventRotationPartial, EventRotationFailed, EventRotationSuperseded,
		EventTargetDrift, EventTargetRecovered, EventCredentialRetired, EventPauseStarted, EventPauseEnded}
}

// Event is one notification's content: {"id", "type", "time", "source", "rotation_id",
// "targets": [{"name", "platform", "status", "error": {"code", "message"}}]}, plus a detail for
// events about no rotation (a pause, a retire).
type Event struct {
	ID         string        `json:"id"`
	Type       string        `json:"type"`
	Time       time.Time     `json:"time"`
	Source     string        `json:"source,omitempty"`
	RotationID string        `json:"rotation_id,omitempty"`
	Targets    []EventTarget `json:"targets,omitempty"`
	Detail     string        `json:"detail,omitempty"`
}

// EventTarget is one target in an event.
type EventTarget struct {
	Name     string      `json:"name"`
	Platform string      `json:"platform"`
	Status   string      `json:"status"`
	Error    *EventError `json:"error,omitempty"`
}

// EventError is a target's error in an event (already scrubbed: target errors never hold a
// secret).
type EventError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// maxEventTargets bounds the targets one event lists (a 100,000-target rotation): the failing
// ones first.
const maxEventTargets = 100

// newEventID names an event: time-ordered, unique across replicas.
func newEventID(now time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("evt_%013x%s", now.UnixMilli(), hex.EncodeToString(b[:]))
}

// emit writes ev to the outbox with one delivery for each notification that wants it (one
// transaction: a committed event is delivered even if the process dies right after). It never
// fails the caller and never waits for a receiver (package notify sends on its own goroutines):
// an event that cannot be written is logged (the store is down; the audit trail has what
// happened).
func (e *Engine) emit(ctx context.Context, ev Event) {
	if ev.Time.IsZero() {
		ev.Time = e.now()
	}
	if ev.ID == "" {
		ev.ID = newEventID(ev.Time)
	}
	sctx, cancel := e.storeContext(ctx)
	defer cancel()
	if err := e.store.EnqueueEvent(sctx, ev, e.subscribers(ev.Type)); err != nil {
		e.log.Error("store: enqueue event", zap.String("type", ev.Type), zap.String("source", ev.Source), zap.Error(err))
	}
}

// rotationEvent is the event of a finished rotation.
func rotationEvent(r *Rotation) Event {
	ev := Event{Type: "rotation." + string(r.Status), Source: r.Source, RotationID: r.ID}
	for pass := 0; pass < 2 && len(ev.Targets) < maxEventTargets; pass++ {
		for _, t := range r.Targets {
			failing := t.Status != TargetSucceeded && t.Status != TargetSuperseded
			if (pass == 0) != failing || len(ev.Targets) == maxEventTargets {
				continue
			}
			et := EventTarget{Name: t.Name, Platform: t.Platform, Status: string(t.Status)}
			if t.Error != nil {
				et.Error = &EventError{Code: t.Error.Code, Message: t.Error.Message}
			}
			ev.Targets = append(ev.Targets, et)
		}
	}
	return ev
}
