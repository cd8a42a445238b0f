package keyring_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	_ "github.com/credsync/credsync/internal/golden" // registers -update
	"github.com/credsync/credsync/internal/keyring"
)

func key(t *testing.T) []byte {
	k := make([]byte, 32)
	_, err := rand.Read(k)
	require.NoError(t, err)
	return k
}

func TestSealOpen(t *testing.T) {
	k, err := keyring.New(key(t))
	require.NoError(t, err)
	plain := []byte(`{"type":"password","password":"hunter2"}`)
	sealed, err := k.Seal(plain, []byte("rot_1"))
	require.NoError(t, err)
	require.False(t, bytes.Contains(sealed, []byte("hunter2")))
	got, err := k.Open(sealed, []byte("rot_1"))
	require.NoError(t, err)
	require.Equal(t, plain, got)
	_, err = k.Open(sealed, []byte("rot_2"))
	require.Error(t, err, "bound to its rotation id")
	sealed[len(sealed)-1] ^= 1
	_, err = k.Open(sealed, []byte("rot_1"))
	require.Error(t, err, "tampering is detected")
	again, _ := k.Seal(plain, []byte("rot_1"))
	require.NotEqual(t, sealed, again, "fresh nonce each time")
}

func TestKeyRotation(t *testing.T) {
	oldKey, newKey := key(t), key(t)
	before, err := keyring.New(oldKey)
	require.NoError(t, err)
	sealed, err := before.Seal([]byte("x"), nil)
	require.NoError(t, err)

	after, err := keyring.New(newKey, oldKey)
	require.NoError(t, err)
	got, err := after.Open(sealed, nil)
	require.NoError(t, err, "an older key still opens")
	require.Equal(t, []byte("x"), got)

	onlyNew, err := keyring.New(newKey)
	require.NoError(t, err)
	_, err = onlyNew.Open(sealed, nil)
	require.True(t, errors.Is(err, keyring.ErrUnknownKey))
}

func TestLoad(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString(key(t))
	_, err := keyring.Load(keyring.Source{Key: b64})
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(path, []byte(b64+"\n"), 0o600))
	_, err = keyring.Load(keyring.Source{KeyFile: path})
	require.NoError(t, err)
	_, err = keyring.Load(keyring.Source{})
	require.ErrorIs(t, err, keyring.ErrNoKey)
	_, err = keyring.Load(keyring.Source{Key: b64, KeyFile: path})
	require.ErrorContains(t, err, "keep one")
	_, err = keyring.Load(keyring.Source{Key: "not base64!"})
	require.ErrorContains(t, err, "base64")
	_, err = keyring.Load(keyring.Source{Key: base64.StdEncoding.EncodeToString([]byte("short"))})
	require.ErrorContains(t, err, "32")
	_, err = keyring.Load(keyring.Source{Key: b64, OlderKey: []string{"???"}})
	require.ErrorContains(t, err, "older encryption key 1")
}
