package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/credsync/credsync/client"
)

// Set at build time by make build / make docker:
//
//	-ldflags "-X main.version=v1.2.3 -X main.commit=<sha> -X main.date=<RFC 3339>"
//
// A binary built otherwise falls back on what the Go toolchain recorded (buildInfo).
var (
	version = ""
	commit  = ""
	date    = ""
)

// buildInfo is the version, commit and build date of this binary: the ldflags values, else the
// module version and VCS stamp go build records, else "dev" and "unknown".
func buildInfo() (ver, rev, built string) {
	ver, rev, built = version, commit, date
	modified := false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if ver == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			ver = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if rev == "" {
					rev = s.Value
				}
			case "vcs.time":
				if built == "" {
					built = s.Value + " (commit time)"
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if ver == "" {
		ver = "dev"
	}
	if rev == "" {
		rev = "unknown"
	} else if modified && commit == "" {
		rev += " (modified)"
	}
	if built == "" {
		built = "unknown"
	}
	return ver, rev, built
}

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", stderr, "Print the version, commit, build date and Go version.")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	ver, rev, built := buildInfo()
	fmt.Fprintf(stdout, "credsync %s\ncommit: %s\nbuilt:  %s\ngo:     %s %s/%s\n", ver, rev, built, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}

// cmdHealthcheck is the container image's HEALTHCHECK: the image has no shell and no curl.
func cmdHealthcheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("healthcheck", stderr, "GET /healthz (or /readyz) of a running gateway: exit 0 when it answers 200, 1 otherwise.")
	addr := fs.String("addr", "", "gateway address (default $CREDSYNC_ADDR, else "+client.DefaultAddr+")")
	ready := fs.Bool("ready", false, "check /readyz (the store answers, not shutting down) instead of /healthz (the process serves)")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	insecure := fs.Bool("insecure", false, "https: do not verify the gateway's certificate (a loopback check of a certificate issued for another name)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *addr == "" {
		*addr = os.Getenv("CREDSYNC_ADDR")
	}
	u, err := client.ParseAddr(*addr)
	if err != nil {
		fmt.Fprintln(stderr, "credsync healthcheck:", err)
		return exitUsage
	}
	path := "/healthz"
	if *ready {
		path = "/readyz"
	}
	hc := &http.Client{
		Timeout:       *timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if *insecure {
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	}
	url := u.String() + path
	resp, err := hc.Get(url)
	if err != nil {
		fmt.Fprintf(stderr, "credsync healthcheck: %s: %v\n", url, err)
		return exitFailure
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "credsync healthcheck: %s answered %s: %s\n", url, resp.Status, strings.TrimSpace(string(body)))
		return exitFailure
	}
	fmt.Fprintf(stdout, "%s: %s\n", url, resp.Status)
	return exitOK
}
