package config

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/yamlx"
	"github.com/credsync/credsync/notify"
)

// Notification is one entry of notifications: a webhook credsync sends events to (DESIGN.md
// "Notifications").
type Notification struct {
	// Name names it in metrics, GET /v1/notifications and the logs: unique, letters, digits, . _ -.
	Name string `yaml:"name"`
	// URL is an absolute http(s) URL. It may hold a token (a Slack webhook's does): give it by
	// ${VAR}; only its host is ever logged or shown.
	URL core.Secret `yaml:"url"`
	// Format is json (default: the event, signed when secret is set) or slack (a Slack
	// incoming-webhook message).
	Format string `yaml:"format"`
	// Secret, with json, signs each body: X-Credsync-Signature.
	Secret core.Secret `yaml:"secret"`
	// Events are the event types sent (default: every type but rotation.succeeded).
	Events []string `yaml:"events"`
}

// minNotificationSecret is the shortest signing secret taken.
const minNotificationSecret = 16

// buildNotifications checks the notifications block and returns what the delivery service
// takes, event filters defaulted.
func buildNotifications(root *yaml.Node, ns []Notification) ([]notify.Notification, error) {
	list := yamlx.Lookup(root, "notifications")
	seen := map[string]int{}
	out := make([]notify.Notification, 0, len(ns))
	for i, n := range ns {
		node := list.Content[i]
		where := fmt.Sprintf("notifications[%d]", i)
		if !notify.NamePattern.MatchString(n.Name) {
			return nil, yamlx.Errorf(valueOr(node, "name"), "%s.name is %q: it is required, of letters, digits, . _ - (at most 64, starting with a letter or digit)", where, n.Name)
		}
		if j, dup := seen[n.Name]; dup {
			return nil, yamlx.Errorf(valueOr(node, "name"), "%s: the name %q is already used by notifications[%d]", where, n.Name, j)
		}
		seen[n.Name] = i
		where += " (" + n.Name + ")"
		if n.URL.IsZero() {
			return nil, yamlx.Errorf(valueOr(node, "url"), "%s.url is missing or empty (is its ${VAR} set to an empty value?)", where)
		}
		if _, err := notify.CheckURL(n.URL.Reveal()); err != nil {
			return nil, yamlx.Errorf(valueOr(node, "url"), "%s: %v", where, err)
		}
		switch n.Format {
		case "":
			n.Format = notify.FormatJSON
		case notify.FormatJSON, notify.FormatSlack:
		default:
			return nil, yamlx.Errorf(valueOr(node, "format"), "%s.format is %q: must be one of json, slack", where, n.Format)
		}
		if sn := yamlx.Lookup(node, "secret"); sn != nil {
			switch {
			case n.Format == notify.FormatSlack:
				return nil, yamlx.Errorf(sn, "%s.secret: format slack takes no secret: Slack's incoming webhooks verify no signature (their URL is the secret); remove it, or use format json", where)
			case len(n.Secret.Reveal()) < minNotificationSecret:
				return nil, yamlx.Errorf(sn, "%s.secret must be at least %d characters (is its ${VAR} empty?); leave it out to send unsigned", where, minNotificationSecret)
			}
		}
		events := core.DefaultEvents()
		if en := yamlx.Lookup(node, "events"); en != nil {
			if len(n.Events) == 0 {
				return nil, yamlx.Errorf(en, "%s.events is empty: list the event types to send, or leave it out for every type but rotation.succeeded", where)
			}
			events = nil
			for j, e := range n.Events {
				if !slices.Contains(core.EventTypes(), e) {
					return nil, yamlx.Errorf(en.Content[j], "%s.events: unknown event type %q (one of %s)", where, e, strings.Join(core.EventTypes(), ", "))
				}
				if slices.Contains(events, e) {
					return nil, yamlx.Errorf(en.Content[j], "%s.events lists %q twice", where, e)
				}
				events = append(events, e)
			}
		}
		out = append(out, notify.Notification{Name: n.Name, URL: n.URL, Format: n.Format, Secret: n.Secret, Events: events})
	}
	return out, nil
}

// Subscriptions is what the engine knows of the notifications: their names and event filters.
func (c *Config) Subscriptions() []core.Subscription {
	out := make([]core.Subscription, 0, len(c.Notifications))
	for _, n := range c.Notifications {
		out = append(out, core.Subscription{Name: n.Name, Events: append([]string(nil), n.Events...)})
	}
	return out
}
