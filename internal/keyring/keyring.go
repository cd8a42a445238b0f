// Package keyring encrypts credentials at rest with AES-256-GCM. One primary key seals; the
// primary and any older keys open, so the key itself can rotate: add the new key as primary, keep
// the old one among the older keys until every stored credential sealed with it is gone
// (credsync deletes them when a rotation succeeds, or after the retention period).
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

const (
	keySize   = 32
	version   = 1
	idSize    = 4
	nonceSize = 12
	header    = 1 + idSize + nonceSize
)

// Keyring seals with its primary key and opens with any of its keys.
type Keyring struct {
	primaryID [idSize]byte
	aeads     map[[idSize]byte]cipher.AEAD
}

// New returns a keyring; every key must be 32 bytes.
func New(primary []byte, older ...[]byte) (*Keyring, error) {
	k := &Keyring{aeads: map[[idSize]byte]cipher.AEAD{}}
	for i, key := range append([][]byte{primary}, older...) {
		if len(key) != keySize {
			return nil, fmt.Errorf("encryption key %d is %d bytes; AES-256 needs exactly 32 (base64 of 32 random bytes: openssl rand -base64 32)", i+1, len(key))
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("encryption key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("encryption key %d: %w", i+1, err)
		}
		id := keyID(key)
		if i == 0 {
			k.primaryID = id
		}
		k.aeads[id] = aead
	}
	return k, nil
}

// Generate returns a keyring with a fresh random key, for a store that does not outlive the
// process (the demo, the in-memory store).
func Generate() (*Keyring, error) {
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return New(key)
}

func keyID(key []byte) [idSize]byte {
	sum := sha256.Sum256(append([]byte("credsync-key-id:"), key...))
	var id [idSize]byte
	copy(id[:], sum[:idSize])
	return id
}

// Seal encrypts plaintext bound to aad: version, key id, nonce, ciphertext and tag.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, header, header+len(plaintext)+16)
	out[0] = version
	copy(out[1:], k.primaryID[:])
	if _, err := rand.Read(out[1+idSize : header]); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	return k.aeads[k.primaryID].Seal(out, out[1+idSize:header], plaintext, aad), nil
}

// ErrUnknownKey means the ciphertext was sealed with a key this keyring does not hold.
var ErrUnknownKey = errors.New("sealed with a key that is not configured (add it to the older keys)")

// Open decrypts what Seal produced with the same aad.
func (k *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < header+16 || sealed[0] != version {
		return nil, errors.New("not a sealed credential of a known format")
	}
	var id [idSize]byte
	copy(id[:], sealed[1:1+idSize])
	aead, ok := k.aeads[id]
	if !ok {
		return nil, ErrUnknownKey
	}
	plain, err := aead.Open(nil, sealed[1+idSize:header], sealed[header:], aad)
	if err != nil {
		return nil, errors.New("the credential does not decrypt: wrong key, or it belongs to another rotation")
	}
	return plain, nil
}

// Source says where keys come from; see Load.
type Source struct {
	Key      string   // base64 of 32 bytes (CREDSYNC_ENCRYPTION_KEY)
	KeyFile  string   // a file holding the base64 key (store.encryption_key_file)
	OlderKey []string // base64 keys that only open (CREDSYNC_ENCRYPTION_OLD_KEYS, comma-separated)
}

// ErrNoKey is returned by Load when no key is configured.
var ErrNoKey = errors.New("no encryption key: set CREDSYNC_ENCRYPTION_KEY (base64 of 32 bytes, e.g. `openssl rand -base64 32`) or store.encryption_key_file")

// Load builds the keyring from its sources. The key and the key file are exclusive.
func Load(s Source) (*Keyring, error) {
	if s.Key != "" && s.KeyFile != "" {
		return nil, errors.New("both CREDSYNC_ENCRYPTION_KEY and store.encryption_key_file are set: keep one")
	}
	keyText := s.Key
	if s.KeyFile != "" {
		b, err := os.ReadFile(s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("read encryption key file: %w", err)
		}
		keyText = string(b)
	}
	if strings.TrimSpace(keyText) == "" {
		return nil, ErrNoKey
	}
	primary, err := decode(keyText)
	if err != nil {
		return nil, fmt.Errorf("encryption key: %w", err)
	}
	var older [][]byte
	for i, o := range s.OlderKey {
		if strings.TrimSpace(o) == "" {
			continue
		}
		k, err := decode(o)
		if err != nil {
			return nil, fmt.Errorf("older encryption key %d: %w", i+1, err)
		}
		older = append(older, k)
	}
	return New(primary, older...)
}

func decode(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("not valid base64 (generate one with `openssl rand -base64 32`)")
	}
	return b, nil
}
