// Package browsertest finds Debian's Chromium and drives it headless from tests: a screenshot of a
// page at a given window size, and the page's DOM after it loaded. Each run gets a fresh profile
// in a temporary directory, so cookies a page sets last for that run only.
//
// Chromium is installed by make deps (.ci/deps: Debian's chromium package); make test installs
// nothing. A test that needs it calls Require, which fails the test (never skips it) when
// Chromium is missing, saying to run make deps.
package browsertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// EnvPath names the environment variable that may point at a Chromium binary.
const EnvPath = "CREDSYNC_CHROMIUM"

// Installer is what installs Chromium.
const Installer = "make deps"

// candidates are the binaries tried, in order, after EnvPath.
func candidates() []string {
	return []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"}
}

// Find returns the Chromium binary: $CREDSYNC_CHROMIUM, /usr/bin/chromium, or the first of
// chromium, chromium-browser, google-chrome on PATH.
func Find() (string, error) {
	if p := os.Getenv(EnvPath); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("$%s=%s: %w (unset it, or run %s)", EnvPath, p, err, Installer)
		}
		return p, nil
	}
	for _, c := range candidates() {
		if p, err := exec.LookPath(c); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no Chromium found (tried $%s, %s): run %s (on Debian: apt-get install chromium) first", EnvPath, strings.Join(candidates(), ", "), Installer)
}

// Browser runs one Chromium binary headless.
type Browser struct {
	Path string
	// Timeout bounds one run (default 60s).
	Timeout time.Duration
}

// Require returns the browser, or fails the test with a message naming make deps.
func Require(t testing.TB) *Browser {
	t.Helper()
	p, err := Find()
	if err != nil {
		t.Fatalf("this test needs headless Chromium: %v", err)
	}
	return &Browser{Path: p}
}

// flags are passed to every run: headless, no sandbox (tests run as root in CI containers), and
// nothing that reaches the network or a Google service on its own.
func flags() []string {
	return []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-extensions", "--disable-breakpad", "--disable-crash-reporter",
		"--disable-dev-shm-usage", "--no-default-browser-check", "--password-store=basic", "--use-mock-keychain",
		"--mute-audio", "--hide-scrollbars", "--force-device-scale-factor=1",
	}
}

// Screenshot loads url in a window of width×height CSS pixels and writes a PNG of the viewport
// to out.
func (b *Browser) Screenshot(ctx context.Context, url string, width, height int, out string) error {
	abs, err := filepath.Abs(out)
	if err != nil {
		return fmt.Errorf("screenshot path: %w", err)
	}
	_ = os.Remove(abs)
	if _, err := b.run(ctx, "--screenshot="+abs, fmt.Sprintf("--window-size=%d,%d", width, height), url); err != nil {
		return err
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("chromium wrote no screenshot: %w", err)
	}
	return nil
}

// DumpDOM loads url (in a 1280×900 window) and returns the DOM as serialized after the load.
func (b *Browser) DumpDOM(ctx context.Context, url string) (string, error) {
	out, err := b.run(ctx, "--dump-dom", "--window-size=1280,900", url)
	if err != nil {
		return "", err
	}
	return out, nil
}

// run starts Chromium with a fresh profile and returns its standard output.
func (b *Browser) run(ctx context.Context, args ...string) (string, error) {
	timeout := b.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	profile, err := os.MkdirTemp("", "credsync-chromium-")
	if err != nil {
		return "", fmt.Errorf("chromium profile dir: %w", err)
	}
	defer removeAll(profile)

	all := append(flags(), "--user-data-dir="+profile)
	all = append(all, args...)
	cmd := exec.CommandContext(ctx, b.Path, all...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "HOME="+profile) // keep ~/.config, ~/.cache and ~/.pki out of the real home
	ownGroup(cmd)
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	killGroup(cmd) // helpers (zygote, crashpad) that outlive the browser
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (after %s)", ctx.Err(), timeout)
		}
		return "", fmt.Errorf("chromium %s: %w; stderr: %s", strings.Join(args, " "), err, tail(stderr.String(), 2000))
	}
	return stdout.String(), nil
}

// removeAll removes the profile; a helper process may still be writing into it for a moment.
func removeAll(dir string) {
	for i := 0; i < 20; i++ {
		if err := os.RemoveAll(dir); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// PNGSize decodes the PNG at path and returns its size in pixels; an error if it is not a PNG.
func PNGSize(path string) (width, height int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("open screenshot: %w", err)
	}
	defer func() { _ = f.Close() }()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		return 0, 0, fmt.Errorf("%s is not a PNG: %w", path, err)
	}
	return cfg.Width, cfg.Height, nil
}

// ErrNotPNG is returned by CheckPNG for a file that is not a complete PNG.
var ErrNotPNG = errors.New("not a complete PNG")

// CheckPNG decodes the whole PNG at path (not only its header) and checks its size.
func CheckPNG(path string, width, height int) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read screenshot: %w", err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("%s: %w: %v", path, ErrNotPNG, err)
	}
	if got := img.Bounds().Size(); got.X != width || got.Y != height {
		return fmt.Errorf("%s is %dx%d, want %dx%d", path, got.X, got.Y, width, height)
	}
	return nil
}
