package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/core"
	_ "github.com/credsync/credsync/internal/golden" // registers -update
	"github.com/credsync/credsync/metrics"
	"github.com/credsync/credsync/store/memstore"
)

func TestObserverAndHandler(t *testing.T) {
	m := metrics.New()
	m.RotationStarted()
	m.RotationStarted()
	m.RotationFinished(core.RotationSucceeded)
	m.RotationFinished("")
	m.TargetFinished("felt", "felt-prod", core.TargetFailed)
	m.VendorCall("felt", "felt-prod", "update", core.Class5xx, 120*time.Millisecond)
	m.Retry("felt", "felt-prod")
	m.APIRequest("/v1/rotations/:id", 404)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	text := string(body)
	for _, want := range []string{
		`credsync_rotations_total{status="succeeded"} 1`,
		`credsync_rotations_in_flight 0`,
		`credsync_target_updates_total{platform="felt-prod",status="failed",vendor="felt"} 1`,
		`credsync_vendor_request_duration_seconds_count{class="5xx",op="update",platform="felt-prod",vendor="felt"} 1`,
		`credsync_vendor_retries_total{platform="felt-prod",vendor="felt"} 1`,
		`credsync_api_requests_total{code="404",route="/v1/rotations/:id"} 1`,
		`go_goroutines`,
	} {
		require.Contains(t, text, want)
	}
}

func TestStoreIsTimed(t *testing.T) {
	m := metrics.New()
	st := m.Store(memstore.New())
	_, err := st.GetRotation(context.Background(), "nope")
	require.True(t, errors.Is(err, core.ErrNotFound))
	require.NoError(t, st.AppendAudit(context.Background(), core.AuditEvent{Action: "x"}))
	n, err := testutil.GatherAndCount(m.Registry(), "credsync_store_operation_duration_seconds")
	require.NoError(t, err)
	require.Equal(t, 2, n)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	require.True(t, strings.Contains(rec.Body.String(), `credsync_store_operation_duration_seconds_count{op="get_rotation",result="error"} 1`), "a failed store call is counted as an error")
}

func TestCallClass(t *testing.T) {
	require.Equal(t, core.Class2xx, core.CallClass(nil))
	require.Equal(t, core.Class4xx, core.CallClass(&core.Error{Code: core.CodeRejected, VendorStatus: 422}))
	require.Equal(t, core.Class5xx, core.CallClass(&core.Error{Code: core.CodeVendorError, VendorStatus: 503}))
	require.Equal(t, core.ClassNetwork, core.CallClass(&core.Error{Code: core.CodeTimeout}))
	require.Equal(t, core.ClassOther, core.CallClass(errors.New("x")))
}
