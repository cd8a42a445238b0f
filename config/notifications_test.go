package config_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/config"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/notify"
)

const slackURL = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"

func notifEnv(k string) (string, bool) {
	switch k {
	case "OPS_WEBHOOK_URL":
		return "https://ops.example.com/credsync", true
	case "OPS_WEBHOOK_SECRET":
		return "whsec-0123456789abcdef", true
	case "SLACK_WEBHOOK_URL":
		return slackURL, true
	case "EMPTY":
		return "", true
	}
	return lookup(k)
}

func parseNotifications(t *testing.T, block string) (*config.Config, error) {
	t.Helper()
	return config.Parse([]byte(designExample+block), notifEnv)
}

func TestNotifications(t *testing.T) {
	cfg, err := parseNotifications(t, `notifications:
  - name: ops
    url: ${OPS_WEBHOOK_URL}
    format: json
    secret: ${OPS_WEBHOOK_SECRET}
    events: [rotation.partial, rotation.failed, target.drift]
  - name: chat
    url: ${SLACK_WEBHOOK_URL}
    format: slack
  - name: audit.all
    url: http://127.0.0.1:9000/hook
`)
	require.NoError(t, err)
	require.Len(t, cfg.Notifications, 3)
	ops, chat, all := cfg.Notifications[0], cfg.Notifications[1], cfg.Notifications[2]
	require.Equal(t, "ops", ops.Name)
	require.Equal(t, "https://ops.example.com/credsync", ops.URL.Reveal())
	require.Equal(t, notify.FormatJSON, ops.Format)
	require.Equal(t, "whsec-0123456789abcdef", ops.Secret.Reveal())
	require.Equal(t, []string{core.EventRotationPartial, core.EventRotationFailed, core.EventTargetDrift}, ops.Events)
	require.Equal(t, notify.FormatSlack, chat.Format)
	require.Equal(t, core.DefaultEvents(), chat.Events, "default: every event but rotation.succeeded")
	require.NotContains(t, chat.Events, core.EventRotationSucceeded)
	require.Equal(t, notify.FormatJSON, all.Format, "json by default")
	require.True(t, all.Secret.IsZero(), "a secret is optional")
	require.Equal(t, []core.Subscription{{Name: "ops", Events: ops.Events}, {Name: "chat", Events: chat.Events}, {Name: "audit.all", Events: all.Events}},
		cfg.Subscriptions())

	cfg, err = parseNotifications(t, "")
	require.NoError(t, err)
	require.Empty(t, cfg.Notifications, "notifications are optional")
}

func TestNotificationRefusals(t *testing.T) {
	for name, tc := range map[string]struct{ block, want string }{
		"no name": {"notifications:\n  - url: https://h.example.com/x\n",
			"line 37: notifications[0].name is \"\": it is required"},
		"a bad name": {"notifications:\n  - name: \"ops team\"\n    url: https://h.example.com/x\n",
			`line 37: notifications[0].name is "ops team"`},
		"a name twice": {"notifications:\n  - name: ops\n    url: https://h.example.com/x\n  - name: ops\n    url: https://h.example.com/y\n",
			`line 39: notifications[1]: the name "ops" is already used by notifications[0]`},
		"no url":       {"notifications:\n  - name: ops\n", "line 37: notifications[0] (ops).url is missing or empty"},
		"an empty url": {"notifications:\n  - name: ops\n    url: ${EMPTY}\n", "line 38: notifications[0] (ops).url is missing or empty (is its ${VAR} set to an empty value?)"},
		"a relative url": {"notifications:\n  - name: ops\n    url: ops.example.com/hook\n",
			"line 38: notifications[0] (ops): url must be an absolute http:// or https:// URL"},
		"another scheme": {"notifications:\n  - name: ops\n    url: ftp://ops.example.com/hook\n",
			"line 38: notifications[0] (ops): url must be an absolute http:// or https:// URL"},
		"a format": {"notifications:\n  - name: ops\n    url: https://h.example.com/x\n    format: xml\n",
			`line 39: notifications[0] (ops).format is "xml": must be one of json, slack`},
		"a slack secret": {"notifications:\n  - name: chat\n    url: ${SLACK_WEBHOOK_URL}\n    format: slack\n    secret: ${OPS_WEBHOOK_SECRET}\n",
			"line 40: notifications[0] (chat).secret: format slack takes no secret: Slack's incoming webhooks verify no signature"},
		"a short secret": {"notifications:\n  - name: ops\n    url: https://h.example.com/x\n    secret: short\n",
			"line 39: notifications[0] (ops).secret must be at least 16 characters"},
		"an empty secret": {"notifications:\n  - name: ops\n    url: https://h.example.com/x\n    secret: ${EMPTY}\n",
			"line 39: notifications[0] (ops).secret must be at least 16 characters (is its ${VAR} empty?)"},
		"an unknown event": {"notifications:\n  - name: ops\n    url: https://h.example.com/x\n    events: [rotation.failed, rotation.exploded]\n",
			`line 39: notifications[0] (ops).events: unknown event type "rotation.exploded" (one of rotation.succeeded, `},
		"an event twice": {"notifications:\n  - name: ops\n    url: https://h.example.com/x\n    events: [rotation.failed, rotation.failed]\n",
			`notifications[0] (ops).events lists "rotation.failed" twice`},
		"no events": {"notifications:\n  - name: ops\n    url: https://h.example.com/x\n    events: []\n",
			"line 39: notifications[0] (ops).events is empty"},
		"an unknown key": {"notifications:\n  - name: ops\n    url: https://h.example.com/x\n    retries: 3\n", "line 39"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseNotifications(t, tc.block)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.NotContains(t, err.Error(), "XXXXsecretXXXX", "never the URL")
			require.NotContains(t, err.Error(), "0123456789abcdef", "never the secret")
		})
	}
}

func TestNotificationURLIsNeverPrinted(t *testing.T) {
	_, err := parseNotifications(t, "notifications:\n  - name: chat\n    url: ${SLACK_WEBHOOK_URL}\n    format: slack\n    secret: x\n")
	require.Error(t, err)
	cfg, err := parseNotifications(t, "notifications:\n  - name: chat\n    url: ${SLACK_WEBHOOK_URL}\n    format: slack\n")
	require.NoError(t, err)
	for _, s := range []string{strings.Join([]string{cfg.Notifications[0].URL.String()}, ""), cfg.File.Notifications[0].URL.String()} {
		require.Equal(t, core.Redacted, s)
	}
}
