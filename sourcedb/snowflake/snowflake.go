package snowflake

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/sourcedb"
)

// The engine's name and the two key slots of a Snowflake user.
const (
	Engine   = "snowflake"
	SlotKey1 = "RSA_PUBLIC_KEY"
	SlotKey2 = "RSA_PUBLIC_KEY_2"
)

// The steps of Stage, as a *sourcedb.StageError names them.
const (
	StepSetKey sourcedb.Step = "set the public key"
	StepLogin  sourcedb.Step = "log in with the new key"
)

// ErrUnavailable is matched by errors of a statement Snowflake did not answer, or kept
// answering 429, 502, 503 or 504, through every retry (or that was still running after every
// poll): trying again later may work.
var ErrUnavailable = errors.New("snowflake unavailable")

var errBadSlot = fmt.Errorf("not a key slot: want %s or %s", SlotKey1, SlotKey2)

// Config says how to reach Snowflake and which user rotates.
type Config struct {
	// Account is the account identifier as in JWT claims: "MYORG-MYACCOUNT" or a locator
	// "XY12345". It is upper-cased in the claims; of a locator with a region or cloud
	// ("xy12345.us-east-1") only the part before the first dot goes into them.
	Account string
	// AdminUser is a user that may ALTER USER the rotated user (with a role such as
	// SECURITYADMIN, or one that owns the user).
	AdminUser string
	// AdminKey is AdminUser's unencrypted RSA private key in PEM: PKCS#8 ("BEGIN PRIVATE KEY")
	// or PKCS#1 ("BEGIN RSA PRIVATE KEY").
	AdminKey core.Secret
	// Role is the role of the admin's statements (optional: the admin's default role).
	Role string
	// Warehouse is the warehouse of the admin's statements (optional: none is needed).
	Warehouse string
	// Endpoint is the base URL (optional): https://<account>.snowflakecomputing.com by default.
	// It must be https, except on a loopback address (tests).
	Endpoint string
	// User is the user whose key slots alternate. Names are matched exactly: a user created
	// without quotes is stored upper-cased.
	User string
	// Client makes the requests (optional): by default one with a 30 s timeout that follows no
	// redirect.
	Client *http.Client

	tune *tuning // tests shorten the timings; nil: the defaults
}

// DB is one Snowflake user's two key slots, reached through an admin login. It implements
// core.SourceDB with the slots in the place of the users: Stage, Login, Retire and Check take
// SlotKey1 or SlotKey2. It is safe for concurrent use.
type DB struct {
	account  string
	endpoint string
	user     string
	admin    session
	client   *http.Client
	ownsHTTP bool
	tune     *tuning
	closed   atomic.Bool
}

var _ core.SourceDB = (*DB)(nil)

// ParseDSN reads rotation.admin_dsn for engine snowflake:
//
//	snowflake://ADMIN_USER@ACCOUNT/?role=SECURITYADMIN&warehouse=WH&endpoint=http://127.0.0.1:1234
//
// It holds no password: the admin authenticates with a key pair, given separately (AdminKey),
// and the rotated user is given separately too (User). The user part may be percent-encoded.
// Errors never quote the DSN's text.
func ParseDSN(dsn string) (Config, error) {
	bad := func(why string) error {
		return fmt.Errorf("sourcedb: %s: the admin DSN %s (it is not shown); expected snowflake://ADMIN_USER@ACCOUNT/?role=ROLE&warehouse=WH&endpoint=URL", Engine, why)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return Config{}, bad("does not parse")
	}
	if u.Scheme != "snowflake" {
		return Config{}, bad("does not begin with snowflake://")
	}
	if u.User == nil || u.User.Username() == "" {
		return Config{}, bad("names no admin user")
	}
	if _, has := u.User.Password(); has {
		return Config{}, bad("holds a password: the admin logs in with a key pair (admin key), so remove it from the DSN")
	}
	if u.Host == "" {
		return Config{}, bad("names no account")
	}
	if u.Port() != "" {
		return Config{}, bad("has a port after the account: give the URL as endpoint= instead")
	}
	if u.Path != "" && u.Path != "/" {
		return Config{}, bad("has a path after the account: nothing may follow it but ?parameters")
	}
	if u.Fragment != "" {
		return Config{}, bad("has a #fragment")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Config{}, bad("has a query that does not parse")
	}
	cfg := Config{Account: u.Hostname(), AdminUser: u.User.Username()}
	for k, v := range q {
		if len(v) != 1 {
			return Config{}, bad("repeats a query parameter")
		}
		switch k {
		case "role":
			cfg.Role = v[0]
		case "warehouse":
			cfg.Warehouse = v[0]
		case "endpoint":
			cfg.Endpoint = v[0]
		default:
			return Config{}, bad("has an unknown query parameter: the known ones are role, warehouse and endpoint")
		}
	}
	return cfg, nil
}

// Open validates cfg, parses AdminKey and checks the admin login with one statement (SELECT 1).
func Open(ctx context.Context, cfg Config) (*DB, error) {
	prefix := "sourcedb: " + Engine + ": "
	if err := checkAccount(cfg.Account); err != nil {
		return nil, errors.New(prefix + err.Error())
	}
	for _, n := range []struct{ what, v string }{{"admin user", cfg.AdminUser}, {"user", cfg.User}} {
		if err := checkName(n.what, n.v); err != nil {
			return nil, errors.New(prefix + err.Error())
		}
	}
	if strings.EqualFold(cfg.AdminUser, cfg.User) {
		return nil, fmt.Errorf("%sthe rotated user %q is the admin user: rotating the admin's own key would cut credsync off; use another admin", prefix, cfg.User)
	}
	for _, n := range []struct{ what, v string }{{"role", cfg.Role}, {"warehouse", cfg.Warehouse}} {
		if n.v != "" {
			if err := checkName(n.what, n.v); err != nil {
				return nil, errors.New(prefix + err.Error())
			}
		}
	}
	endpoint, err := checkEndpoint(cfg.Endpoint, cfg.Account)
	if err != nil {
		return nil, errors.New(prefix + err.Error())
	}
	kp, err := parseKey("the admin key", cfg.AdminKey)
	if err != nil {
		return nil, errors.New(prefix + err.Error())
	}
	d := &DB{
		account:  cfg.Account,
		endpoint: endpoint,
		user:     cfg.User,
		admin:    session{user: cfg.AdminUser, key: kp, role: cfg.Role, warehouse: cfg.Warehouse},
		client:   cfg.Client,
		tune:     cfg.tune,
	}
	if d.client == nil {
		d.ownsHTTP = true
		d.client = &http.Client{
			Timeout:       30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if d.tune == nil {
		d.tune = defaultTuning()
	}
	if err := d.selectOne(ctx, d.admin); err != nil {
		_ = d.Close()
		return nil, wrapf(err, "log in as the admin %q", cfg.AdminUser)
	}
	return d, nil
}

// selectOne runs SELECT 1 as s and checks that it returned 1.
func (d *DB) selectOne(ctx context.Context, s session) error {
	rs, err := d.exec(ctx, s, stmtSelect1, "SELECT 1")
	if err != nil {
		return err
	}
	if len(rs.rows) != 1 || len(rs.rows[0]) != 1 || rs.rows[0][0] == nil || *rs.rows[0][0] != "1" {
		return &safeError{msg: fmt.Sprintf("SELECT 1 as %q did not return 1", s.user)}
	}
	return nil
}

// Stage sets the public half of privateKey on slot of the user (ALTER USER "<user>" SET <slot>
// = '<base64 DER SPKI>'), then logs in as the user with privateKey (a JWT signed with it) and
// runs SELECT 1. An error is a *sourcedb.StageError saying which step failed. Staging the same
// key again is harmless: when setting it fails but logging in with it works, it was set before
// and Stage succeeds. Whatever key the slot held is replaced: the caller stages the slot no
// consumer uses (ActiveSlot says which one they use before the first rotation).
func (d *DB) Stage(ctx context.Context, slot string, privateKey core.Secret) error {
	kp, err := d.args(slot, &privateKey)
	if err != nil {
		return err
	}
	stmt, err := stmtSetKey(d.user, slot, kp.spki)
	if err != nil {
		return fmt.Errorf("sourcedb: %s: stage %s: %w", Engine, slot, err)
	}
	user := session{user: d.user, key: kp}
	if _, err := d.exec(ctx, d.adminWith(kp), stmt, "ALTER USER SET "+slot); err != nil {
		if !errors.Is(err, sourcedb.ErrNoUser) && ctx.Err() == nil && d.selectOne(ctx, user) == nil {
			return nil
		}
		return &sourcedb.StageError{Engine: Engine, User: d.user, Step: StepSetKey, Err: err}
	}
	if err := d.selectOne(ctx, user); err != nil {
		return &sourcedb.StageError{Engine: Engine, User: d.user, Step: StepLogin, Err: err}
	}
	return nil
}

// adminWith is the admin session, with kp's secrets scrubbed from its errors too.
func (d *DB) adminWith(kp *keyPair) session {
	s := d.admin
	s.key = &keyPair{key: d.admin.key.key, spki: d.admin.key.spki, fp: d.admin.key.fp,
		secrets: append(append([]string(nil), d.admin.key.secrets...), kp.secrets...)}
	return s
}

// Login logs in as the user with privateKey (a JWT signed with it) and runs SELECT 1. A refused
// key gives an error matching sourcedb.ErrAuth. Snowflake accepts the key from either slot;
// slot is checked to be one and named in errors.
func (d *DB) Login(ctx context.Context, slot string, privateKey core.Secret) error {
	kp, err := d.args(slot, &privateKey)
	if err != nil {
		return err
	}
	if err := d.selectOne(ctx, session{user: d.user, key: kp}); err != nil {
		return wrapf(err, "log in with the key for %s", slot)
	}
	return nil
}

// Retire unsets slot (ALTER USER "<user>" UNSET <slot>): the key it held no longer logs in.
// Sessions already open stay open. Unsetting an empty slot succeeds, so Retire is idempotent.
func (d *DB) Retire(ctx context.Context, slot string) error {
	if _, err := d.args(slot, nil); err != nil {
		return err
	}
	stmt, err := stmtUnsetKey(d.user, slot)
	if err != nil {
		return fmt.Errorf("sourcedb: %s: retire %s: %w", Engine, slot, err)
	}
	if _, err := d.exec(ctx, d.admin, stmt, "ALTER USER UNSET "+slot); err != nil {
		return wrapf(err, "retire %s of user %q", slot, d.user)
	}
	return nil
}

// Check verifies that the admin login works, that the user exists (DESC USER) and is not
// disabled, and that each of slots is SlotKey1 or SlotKey2. Every problem is reported
// (errors.Join); when the admin cannot log in, the user is not described.
func (d *DB) Check(ctx context.Context, slots ...string) error {
	if d.closed.Load() {
		return sourcedb.ErrClosed
	}
	var errs []error
	for _, s := range slots {
		if !validSlot(s) {
			errs = append(errs, fmt.Errorf("sourcedb: %s: %q is %w", Engine, s, errBadSlot))
		}
	}
	if err := d.selectOne(ctx, d.admin); err != nil {
		return errors.Join(append(errs, wrapf(err, "log in as the admin %q", d.admin.user))...)
	}
	props, err := d.describe(ctx)
	if err != nil {
		errs = append(errs, wrapf(err, "check user %q", d.user))
	} else if strings.EqualFold(props["DISABLED"], "true") {
		errs = append(errs, fmt.Errorf("sourcedb: %s: check user %q: the user is disabled: ALTER USER %s SET DISABLED = FALSE", Engine, d.user, quoteIdent(d.user)))
	}
	return errors.Join(errs...)
}

// ActiveSlot says which slot the consumers hold before credsync has rotated anything: the one
// slot holding a key (DESC USER's RSA_PUBLIC_KEY_FP and RSA_PUBLIC_KEY_2_FP), SlotKey1 when
// neither holds one, and an error saying what to do when both hold one (credsync cannot tell
// which key the consumers use).
func (d *DB) ActiveSlot(ctx context.Context) (string, error) {
	if d.closed.Load() {
		return "", sourcedb.ErrClosed
	}
	props, err := d.describe(ctx)
	if err != nil {
		return "", wrapf(err, "find the active key slot of user %q", d.user)
	}
	fp1, fp2 := props[SlotKey1+"_FP"], props[SlotKey2+"_FP"]
	switch {
	case fp1 != "" && fp2 != "":
		return "", fmt.Errorf("sourcedb: %s: user %q holds a key in both slots (%s %s, %s %s), so credsync cannot tell which one the consumers use: "+
			"unset the one no consumer uses (ALTER USER %s UNSET %s, or ... UNSET %s), then rotate", Engine, d.user,
			SlotKey1, fp1, SlotKey2, fp2, quoteIdent(d.user), SlotKey1, SlotKey2)
	case fp2 != "":
		return SlotKey2, nil
	}
	return SlotKey1, nil
}

// describe runs DESC USER as the admin and returns its properties (upper-cased names); a value
// that is unset ("null", SQL NULL or empty) is "".
func (d *DB) describe(ctx context.Context) (map[string]string, error) {
	rs, err := d.exec(ctx, d.admin, stmtDescUser(d.user), "DESC USER")
	if err != nil {
		return nil, err
	}
	pi, vi := rs.column("property"), rs.column("value")
	if pi < 0 || vi < 0 {
		return nil, &safeError{msg: "DESC USER returned no property and value columns"}
	}
	props := make(map[string]string, len(rs.rows))
	for _, row := range rs.rows {
		if len(row) <= max(pi, vi) || row[pi] == nil {
			continue
		}
		v := ""
		if row[vi] != nil && !strings.EqualFold(*row[vi], "null") {
			v = *row[vi]
		}
		props[strings.ToUpper(*row[pi])] = v
	}
	if _, ok := props[SlotKey1+"_FP"]; !ok {
		return nil, &safeError{msg: "DESC USER shows no " + SlotKey1 + "_FP property: is the endpoint Snowflake?"}
	}
	return props, nil
}

// Close releases idle connections of the default client. Afterwards every method fails with
// sourcedb.ErrClosed.
func (d *DB) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	if d.ownsHTTP {
		d.client.CloseIdleConnections()
	}
	return nil
}

// args checks what Stage, Login and Retire are given and parses the key (nil for Retire).
func (d *DB) args(slot string, key *core.Secret) (*keyPair, error) {
	if d.closed.Load() {
		return nil, sourcedb.ErrClosed
	}
	if !validSlot(slot) {
		return nil, fmt.Errorf("sourcedb: %s: %q is %w", Engine, slot, errBadSlot)
	}
	if key == nil {
		return nil, nil
	}
	kp, err := parseKey("the private key for "+slot, *key)
	if err != nil {
		return nil, fmt.Errorf("sourcedb: %s: %w", Engine, err)
	}
	return kp, nil
}

// checkAccount accepts an account identifier: letters, digits, _ - and . (a locator with its
// region), as a host name label allows.
func checkAccount(a string) error {
	if a == "" {
		return errors.New("the account is empty: want MYORG-MYACCOUNT or a locator such as XY12345")
	}
	if len(a) > 255 {
		return errors.New("the account is longer than 255 bytes")
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("the account holds a character other than letters, digits, - _ and . (at byte %d): want MYORG-MYACCOUNT or a locator such as XY12345", i)
		}
	}
	if strings.HasPrefix(a, ".") || strings.HasSuffix(a, ".") || strings.Contains(a, "..") {
		return errors.New("the account has an empty part between dots")
	}
	return nil
}

// checkName accepts a user, role or warehouse name: not empty, valid UTF-8, no control
// characters, at most 255 bytes.
func checkName(what, s string) error {
	if s == "" {
		return fmt.Errorf("the %s is empty", what)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("the %s %q is not valid UTF-8", what, s)
	}
	if len(s) > 255 {
		return fmt.Errorf("the %s is longer than 255 bytes", what)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("the %s %q holds a control character", what, s)
		}
	}
	return nil
}

// checkEndpoint returns the base URL without a trailing slash: the given one, checked, or the
// account's default.
func checkEndpoint(e, account string) (string, error) {
	if e == "" {
		return "https://" + strings.ToLower(account) + ".snowflakecomputing.com", nil
	}
	u, err := url.Parse(e)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "", errors.New("the endpoint is not an absolute URL (https://<account>.snowflakecomputing.com)")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return "", errors.New("the endpoint may hold only a scheme, a host and a port (no user, path, query or fragment)")
	}
	switch u.Scheme {
	case "https":
	case "http":
		ip := net.ParseIP(u.Hostname())
		if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return "", errors.New("the endpoint is http on a host that is not a loopback address: use https (tokens would cross the network in clear text)")
		}
	default:
		return "", errors.New("the endpoint's scheme must be https")
	}
	return u.Scheme + "://" + u.Host, nil
}
