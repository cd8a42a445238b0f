package faults

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/credsync/credsync/adapters/fakeutil"
	"github.com/credsync/credsync/core"
)

// The suite's platform settings, and the engine's default backoff that gateway.New uses: the wait
// before attempt n+1 is 500ms·2^(n-1) with jitter down to half, or the vendor's Retry-After
// when that is longer.
const (
	callTimeout = time.Second
	maxAttempts = 3
	minBackoff  = 250*time.Millisecond + 500*time.Millisecond // before attempts 2 and 3
	maxBackoff  = 500*time.Millisecond + time.Second
	// slack absorbs a loaded machine (2 shared cores, the race detector): upper bounds only.
	slack = 3 * time.Second
)

// outcome is what every target of the rotation must end with.
type outcome struct {
	status       core.TargetStatus
	code         string // "" on success
	retryable    bool
	vendorStatus int
	attempts     int
}

type faultCase struct {
	name string
	// fault returns a maker of the fault each fake vendor gets (nil: none); other is a host the
	// vendor may redirect to, which must never be called.
	fault func(other string) func() fakeutil.Fault
	// refused points every platform at a port nothing listens on.
	refused bool
	want    outcome
	// Each target's time from start to finish lies within [min, max].
	min, max time.Duration
	// maxMessage bounds the stored error message (0: 1 KiB).
	maxMessage int
}

const errBody = `{"error":{"code":"SLOW_DOWN","message":"try again later"},"message":"try again later"}`

func every(f fakeutil.Fault) func(string) func() fakeutil.Fault {
	return func(string) func() fakeutil.Fault { return func() fakeutil.Fault { return f } }
}

// fresh gives each vendor its own fault (faults that count requests must not share a counter).
func fresh(mk func() fakeutil.Fault) func(string) func() fakeutil.Fault {
	return func(string) func() fakeutil.Fault { return mk }
}

func failed(code string, retryable bool, vendorStatus, attempts int) outcome {
	return outcome{status: core.TargetFailed, code: code, retryable: retryable, vendorStatus: vendorStatus, attempts: attempts}
}

func succeeded(attempts int) outcome {
	return outcome{status: core.TargetSucceeded, attempts: attempts}
}

func faultCases() []faultCase {
	allAttempts := callTimeout*maxAttempts + maxBackoff // worst case of a call that never answers
	cases := []faultCase{
		{
			name:  "429 Retry-After in seconds, every time: honoured before each retry, then fails rate_limited",
			fault: every(fakeutil.Status(http.StatusTooManyRequests, "1", errBody, 0)),
			want:  failed(core.CodeRateLimited, true, http.StatusTooManyRequests, maxAttempts),
			min:   2 * time.Second, max: 2*time.Second + slack,
		},
		{
			name: "429 Retry-After as an HTTP date, once: waits for the date, then succeeds",
			fault: func(string) func() fakeutil.Fault {
				// Whole seconds: the vendor asks for 2-3 s from now; the target started a moment
				// after now, so it waits at least 1 s, twice the longest backoff it would have used.
				at := fakeutil.RetryAfterDate(3 * time.Second)
				return func() fakeutil.Fault { return fakeutil.Status(http.StatusTooManyRequests, at, errBody, 1) }
			},
			want: succeeded(2),
			min:  time.Second, max: 3*time.Second + slack,
		},
		{
			name:  "429 without Retry-After: exponential backoff, then fails rate_limited",
			fault: every(fakeutil.Status(http.StatusTooManyRequests, "", errBody, 0)),
			want:  failed(core.CodeRateLimited, true, http.StatusTooManyRequests, maxAttempts),
			min:   minBackoff, max: maxBackoff + slack,
		},
	}
	for _, code := range []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout} {
		cases = append(cases, faultCase{
			name:  strconv.Itoa(code) + " every time: retried with backoff, then fails vendor_error",
			fault: every(fakeutil.Status(code, "", errBody, 0)),
			want:  failed(core.CodeVendorError, true, code, maxAttempts),
			min:   minBackoff, max: maxBackoff + slack,
		})
	}
	return append(cases,
		faultCase{
			name:  "503 once: the retry succeeds",
			fault: fresh(func() fakeutil.Fault { return fakeutil.Status(http.StatusServiceUnavailable, "", errBody, 1) }),
			want:  succeeded(2),
			min:   250 * time.Millisecond, max: slack,
		},
		faultCase{
			name:    "connection refused: network_error after every attempt",
			refused: true,
			want:    failed(core.CodeNetwork, true, 0, maxAttempts),
			min:     minBackoff, max: maxBackoff + slack,
		},
		faultCase{
			name:  "connection reset mid-body: network_error, a half answer is never a success",
			fault: every(fakeutil.Reset()),
			want:  failed(core.CodeNetwork, true, 0, maxAttempts),
			min:   minBackoff, max: maxBackoff + slack,
		},
		faultCase{
			name:  "vendor accepts and never answers: each attempt times out",
			fault: every(fakeutil.Hang()),
			want:  failed(core.CodeTimeout, true, 0, maxAttempts),
			min:   callTimeout*maxAttempts + minBackoff, max: allAttempts + slack,
		},
		faultCase{
			name:  "vendor hangs once: the retry succeeds",
			fault: fresh(func() fakeutil.Fault { return fakeutil.Times(1, fakeutil.Hang()) }),
			want:  succeeded(2),
			min:   callTimeout + 250*time.Millisecond, max: callTimeout + slack,
		},
		faultCase{
			name:  "body trickles slower than the timeout: each attempt times out",
			fault: every(fakeutil.Trickle(10)),
			want:  failed(core.CodeTimeout, true, 0, maxAttempts),
			min:   callTimeout*maxAttempts + minBackoff, max: allAttempts + slack,
		},
		faultCase{
			name:  "huge (2 MiB) error body: read bounded, message short, vendor_error",
			fault: every(fakeutil.Huge(http.StatusInternalServerError, 2<<20)),
			want:  failed(core.CodeVendorError, true, http.StatusInternalServerError, maxAttempts),
			min:   minBackoff, max: maxBackoff + slack,
		},
		faultCase{
			name:  "non-JSON (HTML) 502: vendor_error with a short snippet",
			fault: every(fakeutil.NonJSON(http.StatusBadGateway)),
			want:  failed(core.CodeVendorError, true, http.StatusBadGateway, maxAttempts),
			min:   minBackoff, max: maxBackoff + slack,
		},
		faultCase{
			name:  "non-JSON (HTML) 400: rejected, not retried",
			fault: every(fakeutil.NonJSON(http.StatusBadRequest)),
			want:  failed(core.CodeRejected, false, http.StatusBadRequest, 1),
			min:   0, max: slack,
		},
		faultCase{
			name: "redirect to another host: not followed, bad_response, not retried",
			fault: func(other string) func() fakeutil.Fault {
				return func() fakeutil.Fault { return fakeutil.Redirect(other) }
			},
			want: failed(core.CodeBadResponse, false, http.StatusTemporaryRedirect, 1),
			min:  0, max: slack,
		},
	)
}

// TestVendorFaults runs one rotation per fault through the real gateway, every vendor
// misbehaving alike, and checks each target's outcome, how many calls reached the vendor, and
// how long the target took.
func TestVendorFaults(t *testing.T) {
	for _, tc := range faultCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var otherHits atomic.Int32
			other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				otherHits.Add(1)
				w.WriteHeader(http.StatusOK)
			}))
			defer other.Close()

			o := stackOptions{timeout: callTimeout, maxAttempts: maxAttempts}
			if tc.refused {
				o.baseURLs = map[string]string{}
				for _, v := range targets {
					o.baseURLs[v] = closedPort(t)
				}
			}
			s := newStack(t, o)
			if tc.fault != nil {
				s.setFault(tc.fault(other.URL))
			}

			start := time.Now()
			rot := s.rotate(t, "fault-pw-0123456789")
			took := time.Since(start)

			want := core.RotationFailed
			if tc.want.status == core.TargetSucceeded {
				want = core.RotationSucceeded
			}
			require.Equal(t, want, rot.Status)
			require.Len(t, rot.Targets, len(targets))
			for name, vendor := range targets {
				tr := target(t, rot, name)
				require.Equal(t, tc.want.status, tr.Status, "%s: %+v", name, tr.Error)
				require.Equal(t, tc.want.attempts, tr.Attempts, "%s attempts", name)
				if tc.want.status == core.TargetSucceeded {
					require.Nil(t, tr.Error, name)
					require.True(t, tr.Verified, "%s is verified after the retry", name)
				} else {
					require.NotNil(t, tr.Error, name)
					t.Logf("%s: %s (retryable %v, vendor_status %d): %s", name, tr.Error.Code, tr.Error.Retryable, tr.Error.VendorStatus, tr.Error.Message)
					require.Equal(t, tc.want.code, tr.Error.Code, "%s: %s", name, tr.Error.Message)
					require.Equal(t, tc.want.retryable, tr.Error.Retryable, "%s retryable", name)
					require.Equal(t, tc.want.vendorStatus, tr.Error.VendorStatus, "%s vendor_status", name)
					maxMsg := tc.maxMessage
					if maxMsg == 0 {
						maxMsg = 1 << 10
					}
					require.LessOrEqual(t, len(tr.Error.Message), maxMsg, "%s: the message stays short", name)
				}
				calls := tc.want.attempts
				if tc.refused {
					calls = 0
				}
				require.Equal(t, calls, s.writes(vendor), "%s: update calls the vendor received: %v", name, s.requests(vendor))

				require.NotNil(t, tr.StartedAt, name)
				require.NotNil(t, tr.FinishedAt, name)
				d := tr.FinishedAt.Sub(*tr.StartedAt)
				require.GreaterOrEqual(t, d, tc.min, "%s took %s: at least %s", name, d, tc.min)
				require.LessOrEqual(t, d, tc.max, "%s took %s: at most %s", name, d, tc.max)
			}
			require.LessOrEqual(t, took, tc.max+time.Second, "the API answered within the bound")
			require.Zero(t, otherHits.Load(), "the other host never receives a request, let alone the token")

			// What the API answered is what the store holds.
			status, _, b := s.call(t, http.MethodGet, "/v1/rotations/"+rot.ID, "", nil)
			require.Equal(t, http.StatusOK, status)
			var stored core.Rotation
			require.NoError(t, json.Unmarshal(b, &stored))
			require.Equal(t, rot.Status, stored.Status)
			for i := range rot.Targets {
				require.Equal(t, rot.Targets[i].Attempts, stored.Targets[i].Attempts)
				require.Equal(t, rot.Targets[i].Error, stored.Targets[i].Error)
			}
		})
	}
}
