package browsertest

import (
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/credsync/credsync/internal/golden" // registers -update
)

func TestFindNamesTheInstaller(t *testing.T) {
	t.Setenv(EnvPath, filepath.Join(t.TempDir(), "no-such-chromium"))
	_, err := Find()
	if err == nil || !strings.Contains(err.Error(), Installer) {
		t.Fatalf("Find with a missing $%s: %v; want an error naming %s", EnvPath, err, Installer)
	}
}

func TestFindHonoursTheEnvironment(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "chromium")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvPath, fake)
	got, err := Find()
	if err != nil || got != fake {
		t.Fatalf("Find = %q, %v; want %q", got, err, fake)
	}
}

func TestCheckPNG(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.png")
	f, err := os.Create(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, image.NewRGBA(image.Rect(0, 0, 39, 84))); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := CheckPNG(good, 39, 84); err != nil {
		t.Fatalf("CheckPNG of a 39x84 PNG: %v", err)
	}
	if w, h, err := PNGSize(good); err != nil || w != 39 || h != 84 {
		t.Fatalf("PNGSize = %d, %d, %v", w, h, err)
	}
	if err := CheckPNG(good, 40, 84); err == nil {
		t.Fatal("CheckPNG accepted the wrong size")
	}

	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.png")
	if err := os.WriteFile(cut, raw[:len(raw)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CheckPNG(cut, 39, 84); err == nil {
		t.Fatal("CheckPNG accepted a truncated PNG")
	}
	text := filepath.Join(dir, "text.png")
	if err := os.WriteFile(text, []byte("not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := PNGSize(text); err == nil {
		t.Fatal("PNGSize accepted a text file")
	}
}
