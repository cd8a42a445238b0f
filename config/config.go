// Package config loads credsync's YAML config: ${VAR} expansion, strict decoding (an unknown key
// is an error with its line), validation, and building each target's adapter through its vendor
// package, which validates its own target block.
package config

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-playground/validator/v10"
	"gopkg.in/yaml.v3"

	"github.com/credsync/credsync/adapters"
	"github.com/credsync/credsync/adapters/vendorhttp"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/yamlx"
	"github.com/credsync/credsync/notify"
	"github.com/credsync/credsync/sourcedb"
	"github.com/credsync/credsync/sourcedb/password"
	"github.com/credsync/credsync/sourcedb/snowflake"
)

// DefaultListen is where the gateway listens when server.listen is not set.
const DefaultListen = "127.0.0.1:8080"

// DefaultStoreTimeout is store.timeout when it is not set.
const DefaultStoreTimeout = 5 * time.Second

// File is the config file as written.
type File struct {
	Server    Server              `yaml:"server"`
	Store     Store               `yaml:"store"`
	Platforms map[string]Platform `yaml:"platforms"`
	Sources   map[string]Source   `yaml:"sources"`
	// Notifications are the webhooks events are sent to (notifications.go).
	Notifications []Notification `yaml:"notifications"`
}

// Server configures the gateway's own API.
type Server struct {
	// Listen is host:port (default 127.0.0.1:8080).
	Listen string `yaml:"listen" validate:"omitempty,hostname_port"`
	// APITokens are who may call the gateway.
	APITokens []APIToken `yaml:"api_tokens" validate:"required,min=1"`
	// StatusTokens open only the read-only status page at / (same shape as api_tokens); the API
	// refuses them.
	StatusTokens []APIToken `yaml:"status_tokens"`
	// RotationDeadline bounds one rotation, retries and verification included (default 10m).
	RotationDeadline time.Duration `yaml:"rotation_deadline" validate:"gte=0"`
	// ReplicaID names this gateway in rotation leases (default <hostname>:<listen>). It must stay
	// the same across restarts of one replica and differ between replicas.
	ReplicaID string `yaml:"replica_id"`
	// TLS serves HTTPS (and, with client_ca_file, requires client certificates).
	TLS *TLS `yaml:"tls"`
	// ReadTimeout, WriteTimeout and IdleTimeout bound connections (defaults 30s, wait+30s, 2m).
	ReadTimeout  time.Duration `yaml:"read_timeout" validate:"gte=0"`
	WriteTimeout time.Duration `yaml:"write_timeout" validate:"gte=0"`
	IdleTimeout  time.Duration `yaml:"idle_timeout" validate:"gte=0"`
	// MaxBodyBytes bounds a request body (default 1 MiB).
	MaxBodyBytes int64 `yaml:"max_body_bytes" validate:"gte=0"`
	// RateLimit bounds each API token's requests (0: no limit).
	RateLimit RateLimit `yaml:"rate_limit"`
}

// TLS is the gateway's certificate and, optionally, the CA its clients' certificates must chain to.
type TLS struct {
	CertFile     string `yaml:"cert_file" validate:"required"`
	KeyFile      string `yaml:"key_file" validate:"required"`
	ClientCAFile string `yaml:"client_ca_file"`
}

// RateLimit is a token bucket.
type RateLimit struct {
	RequestsPerSecond float64 `yaml:"requests_per_second" validate:"gte=0"`
	Burst             int     `yaml:"burst" validate:"gte=0"`
}

// APIToken is one caller of the gateway: its token in clear (from ${VAR}), or only the hex
// SHA-256 of it (so the config file holds no usable secret).
type APIToken struct {
	Name        string      `yaml:"name" validate:"required"`
	Token       core.Secret `yaml:"token"`
	TokenSHA256 string      `yaml:"token_sha256" validate:"omitempty,len=64,hexadecimal"`
	// Sources are glob patterns (* ? [...]) of the sources the token may touch; none: every
	// source. Actions are what it may do: rotate, read, retry, admin; none: all four. A status
	// token may only read.
	Sources []string `yaml:"sources"`
	Actions []string `yaml:"actions" validate:"dive,oneof=rotate read retry admin"`
}

// Store selects where rotations are kept.
type Store struct {
	// Driver is sqlite (the default: one embedded file), postgres (several replicas on one
	// database) or memory (nothing survives a restart; tests and experiments).
	Driver string `yaml:"driver" validate:"omitempty,oneof=memory sqlite postgres"`
	// DSN is the SQLite file (default credsync.db) or the PostgreSQL connection string.
	DSN string `yaml:"dsn"`
	// EncryptionKeyFile holds the base64 AES-256 key that seals stored credentials, instead of
	// the CREDSYNC_ENCRYPTION_KEY variable.
	EncryptionKeyFile string `yaml:"encryption_key_file"`
	// CredentialRetention is how long the sealed credential of a rotation that did not fully
	// succeed is kept for retries (default 168h).
	CredentialRetention time.Duration `yaml:"credential_retention" validate:"gte=0"`
	// HistoryRetention is how long a finished rotation is kept (default 2160h, 90 days);
	// AuditRetention how long an audit event is, apart from it (default 8760h, a year).
	HistoryRetention time.Duration `yaml:"history_retention" validate:"gte=0"`
	AuditRetention   time.Duration `yaml:"audit_retention" validate:"gte=0"`
	// LeaseTTL is how long a replica's claim on a rotation lasts without renewal (default 30s).
	LeaseTTL time.Duration `yaml:"lease_ttl" validate:"gte=0"`
	// Timeout bounds every store call (default 5s): a store that has not answered by then is
	// unavailable (the API answers 503 store_unavailable), and /readyz needs a write within it.
	// Checked by Parse: more than 0 when set.
	Timeout time.Duration `yaml:"timeout"`
}

// Platform is one vendor account.
type Platform struct {
	Vendor  string      `yaml:"vendor" validate:"required,vendor"`
	BaseURL string      `yaml:"base_url" validate:"required,http_url"`
	Token   core.Secret `yaml:"token"`
	// Timeout bounds each vendor call (default 30s).
	Timeout time.Duration `yaml:"timeout" validate:"gte=0"`
	// MaxAttempts bounds the attempts of each call, the first included (default 5).
	MaxAttempts int `yaml:"max_attempts" validate:"gte=0,lte=100"`
	// MaxConcurrency bounds calls in flight to this platform, across rotations (default 8).
	MaxConcurrency int `yaml:"max_concurrency" validate:"gte=0,lte=10000"`
	// RateLimit bounds calls started per second to this platform (default: none), in bursts of
	// up to Burst (default max(1, rate_limit)).
	RateLimit float64 `yaml:"rate_limit" validate:"gte=0"`
	Burst     int     `yaml:"burst" validate:"gte=0"`
	// VerifyEvery runs every target's non-mutating check (credsync check) this often, and
	// keeps its health (default: off); a target's own verify_every wins.
	VerifyEvery time.Duration `yaml:"verify_every"`
}

// Source is one credential and the targets that hold a copy of it. Each target block is decoded
// by its vendor's package.
type Source struct {
	// Targets are the target blocks as written; Parse builds each into Config.Sources and then
	// drops them (nil in a parsed Config).
	Targets []yaml.Node `yaml:"targets"`
	// Rotation makes credsync rotate the credential at the source itself (see Rotation).
	Rotation *Rotation `yaml:"rotation"`
}

// Rotation is sources.<name>.rotation: credsync generates the password, sets it on the user no
// target holds, fans it out, and retires the previous user once every target is verified.
type Rotation struct {
	// Engine is the source database: postgres, mysql (MySQL and MariaDB), or snowflake (a key
	// pair: the user's two public-key slots alternate).
	Engine string `yaml:"engine" validate:"required,oneof=postgres mysql snowflake"`
	// AdminDSN is a login that may change the users' passwords (a secret: ${VAR} it). For
	// snowflake: snowflake://ADMIN_USER@ACCOUNT/?role=SECURITYADMIN (the admin logs in with
	// AdminPrivateKey).
	AdminDSN core.Secret `yaml:"admin_dsn"`
	// AdminPrivateKey is, for snowflake, the admin user's PEM private key (${VAR} it).
	AdminPrivateKey core.Secret `yaml:"admin_private_key"`
	// Users alternate (two: zero downtime); one is replaced in place (targets break until they
	// receive it: a warning at start). For snowflake: the one user whose key slots
	// (RSA_PUBLIC_KEY, RSA_PUBLIC_KEY_2) alternate.
	Users []string `yaml:"users" validate:"min=1,max=2,unique,dive,required"`
	// Password is the generator's policy (postgres, mysql).
	Password PasswordPolicy `yaml:"password"`
	// Key is the key pair generator's policy (snowflake).
	Key KeyPolicy `yaml:"key"`
	// RetireAfter is how long the previous user keeps working once every target is verified
	// (default 1h).
	RetireAfter *time.Duration `yaml:"retire_after"`
	// Schedule rotates the source automatically this often (0: only on request).
	Schedule time.Duration `yaml:"schedule" validate:"gte=0"`
}

// PasswordPolicy is sources.<name>.rotation.password.
type PasswordPolicy struct {
	Length  int  `yaml:"length"`  // 16..128; default 32
	Symbols bool `yaml:"symbols"` // add -_.~!* to letters and digits
}

// KeyPolicy is sources.<name>.rotation.key (snowflake).
type KeyPolicy struct {
	Bits int `yaml:"bits"` // 2048 or 4096; default 2048
}

// DefaultKeyBits is rotation.key.bits when not set.
const DefaultKeyBits = 2048

// DefaultRetireAfter is rotation.retire_after when not set.
const DefaultRetireAfter = time.Hour

// Config is a loaded, validated config with every adapter built.
type Config struct {
	File      File
	Platforms []core.Platform
	Sources   []*core.Source
	// Notifications are checked, their event filters defaulted.
	Notifications []notify.Notification
}

// Load reads and validates the config file at path, expanding ${VAR} from the environment.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(data, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse validates a config document; lookup resolves ${VAR}. Its vendors are credsync's own
// (adapters.Default).
func Parse(data []byte, lookup func(string) (string, bool)) (*Config, error) {
	return ParseWith(data, lookup, adapters.Default())
}

// ParseWith is Parse with the vendors of reg.
func ParseWith(data []byte, lookup func(string) (string, bool), reg *adapters.Registry) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil, errors.New("the config is empty: it needs server, platforms and sources")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, yamlx.Errorf(root, "the config must be a mapping with server, store, platforms and sources")
	}
	if err := yamlx.Expand(root, lookup); err != nil {
		return nil, err
	}
	var f File
	if err := yamlx.DecodeStrict(root, &f); err != nil {
		return nil, err
	}
	v := newValidator(reg)

	serverNode := yamlx.Lookup(root, "server")
	if serverNode == nil {
		return nil, yamlx.Errorf(root, "server is missing: it needs at least api_tokens")
	}
	if err := check(v, serverNode, "server", f.Server); err != nil {
		return nil, err
	}
	if f.Server.Listen == "" {
		f.Server.Listen = DefaultListen
	}
	if f.Server.TLS != nil {
		if err := check(v, yamlx.Lookup(serverNode, "tls"), "server.tls", *f.Server.TLS); err != nil {
			return nil, err
		}
	}
	seenTok := map[string]bool{}
	for _, list := range []struct {
		key    string
		tokens []APIToken
	}{{"api_tokens", f.Server.APITokens}, {"status_tokens", f.Server.StatusTokens}} {
		listNode := yamlx.Lookup(serverNode, list.key)
		for i, t := range list.tokens {
			n := listNode.Content[i]
			where := fmt.Sprintf("server.%s[%d]", list.key, i)
			if err := check(v, n, where, t); err != nil {
				return nil, err
			}
			if seenTok[t.Name] {
				return nil, yamlx.Errorf(n, "%s: the name %q is used twice", where, t.Name)
			}
			seenTok[t.Name] = true
			for j, p := range t.Sources {
				if _, err := path.Match(p, ""); err != nil || strings.TrimSpace(p) == "" {
					return nil, yamlx.Errorf(item(n, "sources", j), "%s (%s): sources[%d] %q is not a glob pattern: use * ? and [...], e.g. \"warehouse-*\"", where, t.Name, j, p)
				}
			}
			if list.key == "status_tokens" {
				for j, a := range t.Actions {
					if a != "read" {
						return nil, yamlx.Errorf(item(n, "actions", j), "%s (%s): a status token may only read (it opens the status page, nothing else): remove %q", where, t.Name, a)
					}
				}
			}
			switch {
			case !t.Token.IsZero() && t.TokenSHA256 != "":
				return nil, yamlx.Errorf(n, "%s (%s): give token or token_sha256, not both", where, t.Name)
			case t.TokenSHA256 != "":
			case len(t.Token.Reveal()) < 16:
				return nil, yamlx.Errorf(valueOr(n, "token"), "%s (%s): the token must be at least 16 characters (is its ${VAR} empty?), or give token_sha256", where, t.Name)
			}
		}
	}

	storeNode := yamlx.Lookup(root, "store")
	if err := check(v, storeNode, "store", f.Store); err != nil {
		return nil, err
	}
	if tn := yamlx.Lookup(storeNode, "timeout"); tn != nil && f.Store.Timeout <= 0 {
		return nil, yamlx.Errorf(tn, "store.timeout is %s: it must be more than 0 (default %s)", f.Store.Timeout, DefaultStoreTimeout)
	}
	if f.Store.Timeout == 0 {
		f.Store.Timeout = DefaultStoreTimeout
	}
	switch f.Store.Driver {
	case "", "sqlite":
		f.Store.Driver = "sqlite"
		if f.Store.DSN == "" {
			f.Store.DSN = "credsync.db"
		}
	case "postgres":
		if f.Store.DSN == "" {
			return nil, yamlx.Errorf(orRoot(storeNode, root), "store.dsn is required with driver postgres (e.g. postgres://credsync@db:5432/credsync)")
		}
	case "memory":
		if f.Store.DSN != "" {
			return nil, yamlx.Errorf(valueOr(storeNode, "dsn"), "store.dsn has no meaning with driver memory")
		}
	}

	platformsNode := yamlx.Lookup(root, "platforms")
	if len(f.Platforms) == 0 {
		return nil, yamlx.Errorf(orRoot(platformsNode, root), "platforms is missing or empty: configure at least one vendor account")
	}
	cfg := &Config{File: f}
	vendors := map[string]adapters.Platform{}
	for _, name := range sortedKeys(f.Platforms) {
		p := f.Platforms[name]
		pn := yamlx.Lookup(platformsNode, name)
		if err := check(v, pn, "platforms."+name, p); err != nil {
			return nil, err
		}
		if p.Token.IsZero() {
			return nil, yamlx.Errorf(valueOr(pn, "token"), "platforms.%s.token is missing or empty (is its ${VAR} set to an empty value?)", name)
		}
		if err := checkVerifyEvery(pn, "platforms."+name, p.VerifyEvery); err != nil {
			return nil, err
		}
		// One admission per platform, shared by its HTTP client (every call: sends, polls,
		// checks) and the engine.
		cp := core.Platform{Name: name, Vendor: p.Vendor, Timeout: p.Timeout,
			MaxAttempts: p.MaxAttempts, MaxConcurrency: p.MaxConcurrency, RateLimit: p.RateLimit, Burst: p.Burst}.WithDefaults()
		cp.Admission = core.NewAdmission(cp, nil)
		vendor, _ := reg.Lookup(p.Vendor) // the validator checked it exists
		vp, err := vendor.NewPlatform(vendorhttp.Platform{Name: name, BaseURL: p.BaseURL, Token: p.Token, Timeout: cp.Timeout, Admission: cp.Admission})
		if err != nil {
			return nil, yamlx.Errorf(pn, "platforms.%s: %v", name, err)
		}
		vendors[name] = vp
		cfg.Platforms = append(cfg.Platforms, cp)
	}

	sourcesNode := yamlx.Lookup(root, "sources")
	if len(f.Sources) == 0 {
		return nil, yamlx.Errorf(orRoot(sourcesNode, root), "sources is missing or empty: configure at least one source and its targets")
	}
	for _, name := range sortedKeys(f.Sources) {
		sn := yamlx.Lookup(sourcesNode, name)
		src, err := buildSource(v, name, sn, f.Sources[name], f.Platforms, vendors)
		if err != nil {
			return nil, err
		}
		cfg.Sources = append(cfg.Sources, src)
	}
	// Each target block is now its adapter: its YAML nodes (about 0.9 KiB a target, more than
	// everything else a target keeps) are dropped rather than kept for the life of the process.
	for name, s := range f.Sources {
		s.Targets = nil
		f.Sources[name] = s
	}
	notifications, err := buildNotifications(root, f.Notifications)
	if err != nil {
		return nil, err
	}
	cfg.Notifications = notifications
	return cfg, nil
}

func buildSource(v *validation, name string, sn *yaml.Node, s Source, platforms map[string]Platform, vendors map[string]adapters.Platform) (*core.Source, error) {
	if len(s.Targets) == 0 {
		return nil, yamlx.Errorf(sn, "sources.%s has no targets", name)
	}
	src := &core.Source{Name: name}
	if s.Rotation != nil {
		sr, err := buildRotation(v, name, yamlx.Lookup(sn, "rotation"), *s.Rotation)
		if err != nil {
			return nil, err
		}
		src.Rotation = sr
	}
	seen := map[string]int{}
	for i := range s.Targets {
		tn := &s.Targets[i]
		where := fmt.Sprintf("sources.%s.targets[%d]", name, i)
		if tn.Kind != yaml.MappingNode {
			return nil, yamlx.Errorf(tn, "%s must be a mapping with at least platform", where)
		}
		pn := yamlx.Lookup(tn, "platform")
		if pn == nil || pn.Value == "" {
			return nil, yamlx.Errorf(tn, "%s: platform is required (one of: %s)", where, strings.Join(sortedKeys(platforms), ", "))
		}
		p, ok := platforms[pn.Value]
		if !ok {
			return nil, yamlx.Errorf(pn, "%s: unknown platform %q (configured: %s)", where, pn.Value, strings.Join(sortedKeys(platforms), ", "))
		}
		tname := fmt.Sprintf("%s/%d", pn.Value, i)
		if nn := yamlx.Lookup(tn, "name"); nn != nil {
			if nn.Value == "" || strings.TrimSpace(nn.Value) != nn.Value || strings.ContainsAny(nn.Value, "\t\n\r") {
				return nil, yamlx.Errorf(nn, "%s: name must be non-empty, on one line, without leading or trailing spaces", where)
			}
			tname = nn.Value
		}
		if j, dup := seen[tname]; dup {
			return nil, yamlx.Errorf(tn, "%s: target name %q is already used by targets[%d]; give one of them another name", where, tname, j)
		}
		seen[tname] = i
		verifyEvery := p.VerifyEvery
		if vn := yamlx.Lookup(tn, "verify_every"); vn != nil {
			var d time.Duration
			if err := vn.Decode(&d); err != nil {
				return nil, yamlx.Errorf(vn, "%s.verify_every %q is not a duration (e.g. 6h)", where, vn.Value)
			}
			if err := checkVerifyEvery(tn, where, d); err != nil {
				return nil, err
			}
			verifyEvery = d
		}
		block := yamlx.Without(tn, "platform", "name", "verify_every")
		if vendor, _ := v.vendors.Lookup(p.Vendor); vendor.TargetKeepsName {
			block = yamlx.Without(tn, "platform", "verify_every")
		}
		a, err := vendors[pn.Value].NewTarget(block)
		if err != nil {
			return nil, fmt.Errorf("%w (in %s, platform %s)", err, where, pn.Value)
		}
		if src.Rotation != nil && !slices.Contains(a.Accepts(), src.Rotation.CredentialType()) {
			ct := src.Rotation.CredentialType()
			return nil, yamlx.Errorf(tn, "%s: source %s rotates a %s at the source, but this %s target takes no %s (it takes %s)",
				where, name, ct, p.Vendor, ct, core.JoinTypes(a.Accepts()))
		}
		src.Targets = append(src.Targets, &core.Target{Name: tname, Platform: pn.Value, Vendor: p.Vendor, Adapter: a, VerifyEvery: verifyEvery})
	}
	return src, nil
}

// MinVerifyEvery is the shortest verify_every: a check is a vendor call (and, for RiverGen, a
// login to the database).
const MinVerifyEvery = time.Second

// checkVerifyEvery refuses a verify_every that is negative or too short (0 is off).
func checkVerifyEvery(n *yaml.Node, where string, d time.Duration) error {
	if d != 0 && d < MinVerifyEvery {
		return yamlx.Errorf(valueOr(n, "verify_every"), "%s.verify_every is %s: at least %s (hours are usual: every check is a vendor call), or 0 for none", where, d, MinVerifyEvery)
	}
	return nil
}

// buildRotation validates a source's rotation block and builds what the engine uses: a way
// to reach the source database (opened for each step) and the password generator.
func buildRotation(v *validation, source string, node *yaml.Node, r Rotation) (*core.SourceRotation, error) {
	where := "sources." + source + ".rotation"
	if err := check(v, node, where, r); err != nil {
		return nil, err
	}
	if r.AdminDSN.IsZero() {
		return nil, yamlx.Errorf(valueOr(node, "admin_dsn"), "%s.admin_dsn is required: a login that may change the users' passwords (give it by ${VAR})", where)
	}
	retire := DefaultRetireAfter
	if r.RetireAfter != nil {
		if *r.RetireAfter < 0 {
			return nil, yamlx.Errorf(valueOr(node, "retire_after"), "%s.retire_after must not be negative", where)
		}
		retire = *r.RetireAfter
	}
	if r.Schedule > 0 && r.Schedule < time.Minute {
		return nil, yamlx.Errorf(valueOr(node, "schedule"), "%s.schedule is %s: rotate at most once a minute (or 0: only on request)", where, r.Schedule)
	}
	sr := &core.SourceRotation{Engine: r.Engine, RetireAfter: retire, Schedule: r.Schedule}
	if r.Engine == snowflake.Engine {
		if err := snowflakeRotation(node, where, r, sr); err != nil {
			return nil, err
		}
		return sr, nil
	}
	if !r.AdminPrivateKey.IsZero() || r.Key != (KeyPolicy{}) {
		return nil, yamlx.Errorf(node, "%s: admin_private_key and key are for engine snowflake; %s rotates a password (see password)", where, r.Engine)
	}
	pol := password.Policy{Length: r.Password.Length, Symbols: r.Password.Symbols}
	if err := pol.Validate(); err != nil {
		return nil, yamlx.Errorf(valueOr(node, "password"), "%s.password: %v", where, err)
	}
	engine, dsn := r.Engine, r.AdminDSN
	sr.Users = append([]string(nil), r.Users...)
	sr.Open = func(ctx context.Context) (core.SourceDB, error) {
		return sourcedb.Open(ctx, engine, dsn.Reveal())
	}
	sr.Generate = func() (core.Secret, error) { return password.Generate(pol) }
	return sr, nil
}

// snowflakeRotation builds a Snowflake key-pair rotation: the one user's two key slots
// alternate, the admin logs in with its own key pair, and every target receives the new
// private key.
func snowflakeRotation(node *yaml.Node, where string, r Rotation, sr *core.SourceRotation) error {
	if len(r.Users) != 1 {
		return yamlx.Errorf(valueOr(node, "users"), "%s.users: engine snowflake rotates the key of one user (its two key slots, RSA_PUBLIC_KEY and RSA_PUBLIC_KEY_2, alternate): name exactly one", where)
	}
	if r.Password != (PasswordPolicy{}) {
		return yamlx.Errorf(valueOr(node, "password"), "%s.password: engine snowflake rotates a key pair, not a password (see key.bits)", where)
	}
	bits := r.Key.Bits
	if bits == 0 {
		bits = DefaultKeyBits
	}
	if bits != 2048 && bits != 4096 {
		return yamlx.Errorf(valueOr(node, "key"), "%s.key.bits is %d: 2048 or 4096", where, bits)
	}
	sc, err := snowflake.ParseDSN(r.AdminDSN.Reveal())
	if err != nil {
		return yamlx.Errorf(valueOr(node, "admin_dsn"), "%s.admin_dsn: %v", where, err)
	}
	if r.AdminPrivateKey.IsZero() {
		return yamlx.Errorf(node, "%s.admin_private_key is required for engine snowflake: the PEM private key the admin user %s logs in with (give it by ${VAR})", where, sc.AdminUser)
	}
	if _, err := snowflake.PublicKeyFingerprint(r.AdminPrivateKey); err != nil {
		return yamlx.Errorf(valueOr(node, "admin_private_key"), "%s.admin_private_key: %v", where, err)
	}
	sc.AdminKey, sc.User = r.AdminPrivateKey, r.Users[0]
	sr.Users, sr.KeyUser = []string{snowflake.SlotKey1, snowflake.SlotKey2}, sc.User
	sr.Open = func(ctx context.Context) (core.SourceDB, error) { return snowflake.Open(ctx, sc) }
	sr.Generate = func() (core.Secret, error) { return snowflake.GenerateKey(bits) }
	sr.Initial = func(ctx context.Context) (string, error) {
		db, err := snowflake.Open(ctx, sc)
		if err != nil {
			return "", err
		}
		defer func() { _ = db.Close() }()
		return db.ActiveSlot(ctx)
	}
	return nil
}

// validation validates config blocks; vendors is what the "vendor" tag accepts.
type validation struct {
	*validator.Validate
	vendors *adapters.Registry
}

func newValidator(reg *adapters.Registry) *validation {
	v := validator.New(validator.WithRequiredStructEnabled())
	// vendor: a name in the vendor registry.
	_ = v.RegisterValidation("vendor", func(fl validator.FieldLevel) bool {
		_, ok := reg.Lookup(fl.Field().String())
		return ok
	})
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		return name
	})
	return &validation{Validate: v, vendors: reg}
}

// check validates one decoded block and reports the first problem at its key's line.
func check(v *validation, node *yaml.Node, where string, block any) error {
	err := v.Struct(block)
	if err == nil {
		return nil
	}
	var ves validator.ValidationErrors
	if !errors.As(err, &ves) {
		return fmt.Errorf("%s: %w", where, err)
	}
	msgs := make([]string, 0, len(ves))
	line := node
	for i, fe := range ves {
		key := fe.Field()
		if i == 0 {
			line = valueOr(node, key)
		}
		msgs = append(msgs, fmt.Sprintf("%s.%s %s", where, key, describe(fe, v.vendors)))
	}
	return yamlx.Errorf(line, "%s", strings.Join(msgs, "; "))
}

func describe(fe validator.FieldError, vendors *adapters.Registry) string {
	switch fe.Tag() {
	case "required":
		return "is required"
	case "min":
		return "needs at least " + fe.Param() + " entry"
	case "oneof":
		return fmt.Sprintf("is %q: must be one of %s", fmt.Sprint(fe.Value()), strings.ReplaceAll(fe.Param(), " ", ", "))
	case "vendor":
		return fmt.Sprintf("is %q: must be one of %s", fmt.Sprint(fe.Value()), strings.Join(vendors.Names(), ", "))
	case "http_url":
		return fmt.Sprintf("is %q: must be an absolute http(s) URL", fmt.Sprint(fe.Value()))
	case "hostname_port":
		return fmt.Sprintf("is %q: must be host:port", fmt.Sprint(fe.Value()))
	case "gte":
		return "must be at least " + fe.Param()
	case "len":
		return "must be " + fe.Param() + " characters long"
	case "hexadecimal":
		return "must be hexadecimal (sha256sum of the token)"
	case "lte":
		return "must be at most " + fe.Param()
	default:
		return "fails " + fe.Tag()
	}
}

// valueOr returns the value node of key in mapping n, or n itself.
func valueOr(n *yaml.Node, key string) *yaml.Node {
	if c := yamlx.Lookup(n, key); c != nil {
		return c
	}
	return n
}

// item is the node of key's i-th element in mapping n, or the nearest node there is.
func item(n *yaml.Node, key string, i int) *yaml.Node {
	seq := valueOr(n, key)
	if seq.Kind == yaml.SequenceNode && i < len(seq.Content) {
		return seq.Content[i]
	}
	return seq
}

func orRoot(n, root *yaml.Node) *yaml.Node {
	if n != nil {
		return n
	}
	return root
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
