package sourcedb

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// SCRAM-SHA-256 (RFC 5802, RFC 7677) secrets in PostgreSQL's stored form, computed on the
// client as libpq's PQencryptPasswordConn does (pg_fe_scram_build_secret, scram_build_secret in
// src/common/scram-common.c):
//
//	SaltedPassword := Hi(SASLprep(password), salt, iterations)   (PBKDF2-HMAC-SHA-256, 32 bytes)
//	ClientKey      := HMAC(SaltedPassword, "Client Key")
//	StoredKey      := SHA-256(ClientKey)
//	ServerKey      := HMAC(SaltedPassword, "Server Key")
//	secret         := "SCRAM-SHA-256$" iterations ":" base64(salt) "$" base64(StoredKey) ":" base64(ServerKey)
//
// with standard, padded base64. SASLprep is the identity on the printable ASCII passwords this
// package accepts (PostgreSQL skips it for ASCII input), so the password's bytes are used as they
// are. A login proves knowledge of ClientKey, which the secret does not hold: the server checks
// SHA-256(ClientProof XOR HMAC(StoredKey, AuthMessage)) == StoredKey.

const (
	// scramIterations is PostgreSQL's default (and, before 16, only) iteration count.
	scramIterations = 4096
	// scramSaltLen is PostgreSQL's SCRAM_DEFAULT_SALT_LEN.
	scramSaltLen = 16
)

// scramSHA256Secret returns the secret for password with a fresh random salt.
func scramSHA256Secret(password string) (string, error) {
	salt := make([]byte, scramSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("scram salt: %w", err)
	}
	return scramSHA256SecretWith(password, salt, scramIterations)
}

func scramSHA256SecretWith(password string, salt []byte, iterations int) (string, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("scram: %w", err)
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(storedKey[:]), b64(serverKey)), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}
