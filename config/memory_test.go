package config_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/credsync/credsync/config"
)

// A parsed config keeps what each target needs, not the YAML it was written in: the target
// blocks' nodes were about 0.9 KiB a target, the larger part of the gateway's memory per target.
func TestParsedConfigKeepsLittlePerTarget(t *testing.T) {
	var b strings.Builder
	b.WriteString("server:\n  api_tokens:\n    - name: a\n      token: aaaaaaaaaaaaaaaaaaaaaaaa\nstore:\n  driver: memory\n" +
		"platforms:\n  rg:\n    vendor: rivergen\n    base_url: http://127.0.0.1:1\n    token: x\nsources:\n  s:\n    targets:\n")
	const n = 20000
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "      - platform: rg\n        data_source_id: %d\n", i)
	}
	data := []byte(b.String())
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	cfg, err := config.Parse(data, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perTarget := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("live heap of the parsed config: %d bytes per target", perTarget)
	if perTarget > 400 {
		t.Errorf("the parsed config keeps %d bytes per target; at most 400 expected (are the target blocks' YAML nodes kept?)", perTarget)
	}
	if got := len(cfg.Sources[0].Targets); got != n {
		t.Fatalf("%d targets built, want %d", got, n)
	}
	if cfg.File.Sources["s"].Targets != nil {
		t.Error("the target blocks' YAML nodes are still held")
	}
	runtime.KeepAlive(cfg)
}
