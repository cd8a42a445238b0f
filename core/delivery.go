package core

// Delivery of events to notifications (DESIGN.md "Notifications"): the engine knows each
// configured notification only by its name and the event types it wants (Subscription). When it
// emits an event, the store writes the event and one pending delivery per notification that wants
// it in one transaction (Store.EnqueueEvent), so an event that is committed is delivered even if
// the process dies right after. Package notify sends the deliveries, at least once.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Subscription is one configured notification as the engine sees it.
type Subscription struct {
	Name string
	// Events are the event types it wants (config applies the default: every type but
	// rotation.succeeded).
	Events []string
}

// Wants reports whether the notification wants events of type t.
func (s Subscription) Wants(t string) bool { return slices.Contains(s.Events, t) }

// DefaultEvents is the events filter of a notification that names none: every event type but
// rotation.succeeded (a success needs nobody's attention).
func DefaultEvents() []string {
	out := make([]string, 0, len(EventTypes()))
	for _, t := range EventTypes() {
		if t != EventRotationSucceeded {
			out = append(out, t)
		}
	}
	return out
}

// DeliveryStatus is where one event stands with one notification.
type DeliveryStatus string

// Delivery statuses.
const (
	// DeliveryPending: not delivered yet; attempted again at its next attempt time.
	DeliveryPending DeliveryStatus = "pending"
	// DeliveryDelivered: the receiver answered 2xx.
	DeliveryDelivered DeliveryStatus = "delivered"
	// DeliveryFailed: given up, for good: a final answer (a 4xx other than 408 and 429), or not
	// delivered within 24 hours of the event.
	DeliveryFailed DeliveryStatus = "failed"
)

// MaxDeliveryError bounds a delivery's last error, in bytes; stores cut a longer one.
const MaxDeliveryError = 500

// Delivery is one event due to one notification, as Store.ClaimDeliveries hands it out.
type Delivery struct {
	Event        Event
	Notification string
	// Attempts is how many attempts were made before this one.
	Attempts int
	// NextAttemptAt is when it fell due.
	NextAttemptAt time.Time
}

// DeliveryAttempt is the outcome of one attempt (Store.FinishDelivery, RescheduleDelivery).
type DeliveryAttempt struct {
	EventID      string
	Notification string
	// At is when the attempt ended.
	At time.Time
	// Error says why it was not delivered ("" when it was): scrubbed, and never the webhook
	// URL's path or query. Stores keep at most MaxDeliveryError bytes of it.
	Error string
	// NotSent: the outcome was decided without sending anything (given up more than 24 hours
	// after the event): it does not count as an attempt.
	NotSent bool
}

// DeliveryCounts is one notification's deliveries by status, as the store counts them.
type DeliveryCounts struct {
	Notification string `json:"name"`
	// Pending deliveries have not been attempted yet; Failing ones were attempted at least
	// once and are still retried; Delivered and Failed are final.
	Pending   int `json:"pending"`
	Failing   int `json:"failing"`
	Delivered int `json:"delivered"`
	Failed    int `json:"failed"`
	// LastError is the newest error of an attempt (or of giving up), at LastErrorAt;
	// LastDeliveredAt the newest delivery. Kept when the events are purged.
	LastError       string     `json:"last_error"`
	LastErrorAt     *time.Time `json:"last_error_at"`
	LastDeliveredAt *time.Time `json:"last_delivered_at"`
}

// NotificationView is a configured notification as GET /v1/notifications shows it: the event
// types it wants and its deliveries by status.
type NotificationView struct {
	Events []string `json:"events"`
	DeliveryCounts
}

// Notifications lists the configured notifications, in config order, with their delivery
// counts (one read of the store).
func (e *Engine) Notifications(ctx context.Context) ([]NotificationView, error) {
	counts, err := e.store.DeliveryCounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("count deliveries: %w", err)
	}
	byName := make(map[string]DeliveryCounts, len(counts))
	for _, c := range counts {
		byName[c.Notification] = c
	}
	out := make([]NotificationView, 0, len(e.cfg.Notifications))
	for _, n := range e.cfg.Notifications {
		c, ok := byName[n.Name]
		if !ok {
			c = DeliveryCounts{Notification: n.Name}
		}
		out = append(out, NotificationView{Events: append([]string{}, n.Events...), DeliveryCounts: c})
	}
	return out, nil
}

// subscribers names the configured notifications that want events of type t.
func (e *Engine) subscribers(t string) []string {
	var out []string
	for _, n := range e.cfg.Notifications {
		if n.Wants(t) {
			out = append(out, n.Name)
		}
	}
	return out
}

// ClipDeliveryError bounds a delivery's error to MaxDeliveryError bytes, never cutting a
// character in two: what every store keeps.
func ClipDeliveryError(s string) string {
	if len(s) <= MaxDeliveryError {
		return s
	}
	return strings.ToValidUTF8(s[:MaxDeliveryError-3], "") + "..."
}
