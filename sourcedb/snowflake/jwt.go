package snowflake

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// jwtLifetime is how long a token is valid. Snowflake accepts at most one hour; a short life
// limits what a token that leaked (it is a bearer credential) is worth. A fresh one is signed
// for every HTTP request.
const jwtLifetime = 5 * time.Minute

// claimAccount is the account as it goes into the claims: upper-cased, and for a locator with a
// region or cloud ("xy12345.us-east-1.aws") only the part before the first dot.
func claimAccount(account string) string {
	a, _, _ := strings.Cut(account, ".")
	return strings.ToUpper(a)
}

// jwtClaims are the claims of Snowflake's key-pair JWT.
type jwtClaims struct {
	Iss string `json:"iss"` // <ACCOUNT>.<USER>.SHA256:<fingerprint>
	Sub string `json:"sub"` // <ACCOUNT>.<USER>
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
}

// makeClaims builds the claims of user's token, signed by the key of fingerprint fp, at now.
func makeClaims(account, user, fp string, now time.Time) jwtClaims {
	sub := claimAccount(account) + "." + strings.ToUpper(user)
	return jwtClaims{Iss: sub + "." + fp, Sub: sub, Iat: now.Unix(), Exp: now.Add(jwtLifetime).Unix()}
}

// signJWT is an RS256 JWT (RFC 7519, 7515) of claims, signed with key.
func signJWT(key *rsa.PrivateKey, c jwtClaims) (string, error) {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
	body, err := json.Marshal(c)
	if err != nil {
		return "", errors.New("encoding the JWT claims failed")
	}
	input := header + "." + enc.EncodeToString(body)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", errors.New("signing the JWT failed")
	}
	return input + "." + enc.EncodeToString(sig), nil
}
