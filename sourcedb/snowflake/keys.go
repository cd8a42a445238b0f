package snowflake

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/credsync/credsync/core"
)

// keyPair is a parsed RSA private key with what is derived from its public half, and the
// texts that must never appear in an error (the PEM and its body on one line).
type keyPair struct {
	key     *rsa.PrivateKey
	spki    string // base64 (standard, padded) of the DER SubjectPublicKeyInfo: what ALTER USER sets
	fp      string // "SHA256:" + base64(sha256(DER SPKI)): what DESC USER shows and the JWT's iss holds
	secrets []string
}

// minBits is Snowflake's minimum for key-pair authentication.
const minBits = 2048

// maxKeyBits bounds what is parsed (a huge modulus makes every signature slow).
const maxKeyBits = 8192

// parseKey reads an unencrypted RSA private key in PEM: PKCS#8 ("BEGIN PRIVATE KEY") or PKCS#1
// ("BEGIN RSA PRIVATE KEY"). Its errors never quote the key or the parser's message.
func parseKey(what string, s core.Secret) (*keyPair, error) {
	text := s.Reveal()
	if strings.TrimSpace(text) == "" {
		return nil, fmt.Errorf("%s is empty: want an unencrypted RSA private key in PEM (-----BEGIN PRIVATE KEY-----)", what)
	}
	block, rest := pem.Decode([]byte(text))
	if block == nil {
		return nil, fmt.Errorf("%s is not PEM: want an unencrypted RSA private key (-----BEGIN PRIVATE KEY-----, as openssl genrsa | openssl pkcs8 -topk8 -nocrypt writes)", what)
	}
	secrets := []string{text, strings.TrimSpace(text), base64.StdEncoding.EncodeToString(block.Bytes)}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return nil, fmt.Errorf("%s holds more than one PEM block: want exactly one private key", what)
	}
	if _, encrypted := block.Headers["Proc-Type"]; encrypted {
		return nil, fmt.Errorf("%s is an encrypted PEM: decrypt it first (openssl pkcs8 -topk8 -nocrypt)", what)
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: the PKCS#8 key does not parse (the parser's message is not shown)", what)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s is not an RSA key (a %T): Snowflake key-pair authentication here uses RSA", what, k)
		}
		key = rk
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: the PKCS#1 key does not parse (the parser's message is not shown)", what)
		}
		key = k
	case "ENCRYPTED PRIVATE KEY":
		return nil, fmt.Errorf("%s is an encrypted PKCS#8 key: decrypt it first (openssl pkcs8 -in key.p8 -nocrypt -topk8)", what)
	default:
		return nil, fmt.Errorf("%s is a PEM block of type %q: want PRIVATE KEY (PKCS#8) or RSA PRIVATE KEY (PKCS#1)", what, block.Type)
	}
	if bits := key.N.BitLen(); bits < minBits || bits > maxKeyBits {
		return nil, fmt.Errorf("%s is a %d-bit RSA key: Snowflake wants at least %d bits (credsync accepts up to %d)", what, bits, minBits, maxKeyBits)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%s: its public key cannot be encoded", what)
	}
	sum := sha256.Sum256(der)
	kp := &keyPair{
		key:  key,
		spki: base64.StdEncoding.EncodeToString(der),
		fp:   "SHA256:" + base64.StdEncoding.EncodeToString(sum[:]),
	}
	// Also the key's DER in the other encodings a server could echo (PKCS#8 and PKCS#1).
	if p8, err := x509.MarshalPKCS8PrivateKey(key); err == nil {
		secrets = append(secrets, base64.StdEncoding.EncodeToString(p8))
	}
	secrets = append(secrets, base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PrivateKey(key)))
	kp.secrets = secrets
	return kp, nil
}

// GenerateKey makes a new RSA private key of bits bits (2048 or 4096) from crypto/rand, as
// PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"): what a Snowflake client reads as its private key
// file (rsa_key.p8).
func GenerateKey(bits int) (core.Secret, error) {
	if bits != 2048 && bits != 4096 {
		return core.Secret{}, fmt.Errorf("snowflake: an RSA key of %d bits: want 2048 or 4096", bits)
	}
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return core.Secret{}, errors.New("snowflake: generating an RSA key failed (crypto/rand)")
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return core.Secret{}, errors.New("snowflake: encoding the RSA key as PKCS#8 failed")
	}
	return core.NewSecret(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))), nil
}

// PublicKeyFingerprint is Snowflake's fingerprint of a PEM private key's public half: "SHA256:"
// and the standard base64 of the SHA-256 of its DER SubjectPublicKeyInfo, as DESC USER shows in
// RSA_PUBLIC_KEY_FP and RSA_PUBLIC_KEY_2_FP.
func PublicKeyFingerprint(privateKey core.Secret) (string, error) {
	kp, err := parseKey("the private key", privateKey)
	if err != nil {
		return "", fmt.Errorf("snowflake: %w", err)
	}
	return kp.fp, nil
}

// checkBase64 makes sure a value put inside a '...' literal holds only the standard base64
// alphabet: no quote, backslash or anything else that could end or bend the literal.
func checkBase64(s string) error {
	if s == "" {
		return errors.New("the public key is empty")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/', c == '=':
		default:
			return fmt.Errorf("the public key holds a character outside base64 at byte %d", i)
		}
	}
	return nil
}
