package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/go-multierror"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/credsync/credsync/api"
	"github.com/credsync/credsync/config"
	"github.com/credsync/credsync/core"
	"github.com/credsync/credsync/internal/keyring"
)

// Preflight reports every reason New would refuse cfg with opts before it opens the store: the
// listen address, the API tokens, the TLS files, the encryption key, and whether the store can be
// opened at all (the SQLite file's directory exists and is writable, an existing database file is
// writable, the PostgreSQL connection string parses). It changes nothing and connects to nothing:
// it does not create the SQLite database (it creates and removes a temporary file beside it) and
// it does not reach PostgreSQL.
//
// The error is a *multierror.Error with one error per problem, each saying what is wrong and what
// to do, none holding a secret. New runs the same checks first and returns that same error, so a
// config Preflight accepts is not refused by New for any of these reasons, and one it refuses is
// refused by New with the same messages. A *multierror.Error from New is always Preflight's.
func Preflight(cfg *config.Config, opts Options) error {
	_, err := preflight(cfg, opts)
	return err
}

// prepared is what preflight loaded on the way, for New to use as is.
type prepared struct {
	keys         *keyring.Keyring // nil: no key configured, and none required (memory store, or AllowNoKey)
	tls          *tls.Config      // nil: plain HTTP
	tokens       []api.Token
	statusTokens []api.Token
}

func preflight(cfg *config.Config, opts Options) (prepared, error) {
	var p prepared
	var errs *multierror.Error
	add := func(es ...error) { errs = multierror.Append(errs, es...) }
	srv, st := cfg.File.Server, cfg.File.Store

	if err := checkListen(srv.Listen); err != nil {
		add(err)
	}
	var err error
	if p.tokens, err = apiTokens(srv.APITokens); err != nil {
		add(fmt.Errorf("server.api_tokens: %w", err))
	}
	if p.statusTokens, err = apiTokens(srv.StatusTokens); err != nil {
		add(fmt.Errorf("server.status_tokens: %w", err))
	}
	var tlsErrs []error
	if p.tls, tlsErrs = serverTLS(srv.TLS); len(tlsErrs) > 0 {
		add(tlsErrs...)
	}
	if p.keys, err = loadKeys(st.Driver != "memory", opts); err != nil {
		add(err)
	}
	add(storeProblems(st)...)

	if errs.ErrorOrNil() == nil {
		return p, nil
	}
	errs.ErrorFormat = problemList
	return prepared{}, errs
}

// problemList formats Preflight's problems on one line (for logs); credsync prints one a line.
func problemList(es []error) string {
	if len(es) == 1 {
		return es[0].Error()
	}
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return fmt.Sprintf("%d problems: %s", len(es), strings.Join(msgs, "; "))
}

// checkListen parses server.listen as net.Listen will, without resolving its host.
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		if n, perr := strconv.Atoi(port); perr == nil {
			if n < 0 || n > 65535 {
				err = fmt.Errorf("port %d is out of range", n)
			}
		} else if _, perr := net.LookupPort("tcp", port); perr != nil {
			err = fmt.Errorf("unknown port %q", port)
		}
	}
	if err != nil {
		return fmt.Errorf("server.listen %q does not parse (%s): write it as host:port, e.g. 127.0.0.1:8080 or :8080", addr, reason(err))
	}
	return nil
}

// loadKeys loads the keyring opts.Keys names. With no key configured it returns nil, nil when
// none is required: the store does not outlive the process, or opts.AllowNoKey.
func loadKeys(durable bool, opts Options) (*keyring.Keyring, error) {
	kr, err := keyring.Load(opts.Keys)
	var pe *fs.PathError
	switch {
	case err == nil:
		return kr, nil
	case errors.Is(err, keyring.ErrNoKey) && (!durable || opts.AllowNoKey):
		return nil, nil
	case errors.Is(err, keyring.ErrNoKey):
		return nil, fmt.Errorf("%w; or pass --allow-no-encryption-key to store no credential (interrupted rotations then cannot resume)", err)
	case errors.As(err, &pe):
		return nil, fmt.Errorf("store.encryption_key_file %s cannot be read (%s): fix the path or the file's permissions, or remove it and set CREDSYNC_ENCRYPTION_KEY", opts.Keys.KeyFile, reason(err))
	default:
		// keyring's messages name the key by position and never hold it.
		return nil, fmt.Errorf("%w (keys are read from %s)", err, keySources(opts.Keys))
	}
}

func keySources(s keyring.Source) string {
	var from []string
	if s.Key != "" {
		from = append(from, "CREDSYNC_ENCRYPTION_KEY")
	}
	if s.KeyFile != "" {
		from = append(from, "store.encryption_key_file "+s.KeyFile)
	}
	if len(s.OlderKey) > 0 {
		from = append(from, "CREDSYNC_ENCRYPTION_OLD_KEYS")
	}
	return strings.Join(from, " and ")
}

// serverTLS loads the certificate and, with a client CA, requires and verifies client
// certificates (mutual TLS). It reports every file's problem, not only the first.
func serverTLS(t *config.TLS) (*tls.Config, []error) {
	if t == nil {
		return nil, nil
	}
	var errs []error
	read := func(key, path string) []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("server.tls.%s %s cannot be read (%s): fix the path or the file's permissions", key, path, reason(err)))
		}
		return b
	}
	certPEM, keyPEM := read("cert_file", t.CertFile), read("key_file", t.KeyFile)
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(errs) == 0 {
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			errs = append(errs, fmt.Errorf("server.tls: cert_file %s and key_file %s are not a PEM certificate and its private key (%v): give the certificate and the key it was issued for", t.CertFile, t.KeyFile, err))
		}
		c.Certificates = []tls.Certificate{cert}
	}
	if t.ClientCAFile != "" {
		if caPEM := read("client_ca_file", t.ClientCAFile); caPEM != nil {
			pool := x509.NewCertPool()
			if pool.AppendCertsFromPEM(caPEM) {
				c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
			} else {
				errs = append(errs, fmt.Errorf("server.tls.client_ca_file %s holds no PEM certificate: give the PEM file of the CA that issues your clients' certificates", t.ClientCAFile))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// storeProblems says why the store could not be opened, without opening it.
func storeProblems(s config.Store) []error {
	switch s.Driver {
	case "memory":
		return nil
	case "sqlite":
		return sqliteProblems(s.DSN)
	case "postgres":
		if err := postgresProblem(s.DSN); err != nil {
			return []error{err}
		}
		return nil
	default:
		return []error{fmt.Errorf("store.driver %q is unknown: use sqlite, postgres or memory", s.Driver)}
	}
}

// sqliteProblems checks that SQLite can create or write the database file: its directory
// exists and takes new files (the database, and its -wal and -shm files), and the files that
// already exist can be opened for writing. It creates no database: it creates and removes a
// temporary file in the directory.
func sqliteProblems(dsn string) []error {
	path, inMemory := sqlitePath(dsn)
	if inMemory {
		return []error{fmt.Errorf("store.dsn %q is an in-memory SQLite database, which a restart loses: give a file path, or use driver memory", dsn)}
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		return []error{fmt.Errorf("store.dsn %s: the directory %s does not exist or cannot be reached (%s): create it (credsync creates only the database file) or point store.dsn elsewhere", path, dir, reason(err))}
	case !fi.IsDir():
		return []error{fmt.Errorf("store.dsn %s: %s is not a directory: point store.dsn at a file in a directory", path, dir)}
	}
	var errs []error
	if f, err := os.CreateTemp(dir, ".credsync-preflight-*"); err != nil {
		errs = append(errs, fmt.Errorf("store.dsn %s: the directory %s is not writable (%s): SQLite creates the database and its -wal and -shm files there; make it writable for this user or point store.dsn elsewhere", path, dir, reason(err)))
	} else {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("store.dsn: %s cannot be inspected (%s): fix its permissions or point store.dsn elsewhere", p, reason(err)))
			continue
		case fi.IsDir():
			errs = append(errs, fmt.Errorf("store.dsn: %s is a directory, not a database file: point store.dsn at a file", p))
			continue
		}
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			errs = append(errs, fmt.Errorf("store.dsn: the database file %s exists but is not writable (%s): make it writable for this user (chmod, chown) or point store.dsn elsewhere", p, reason(err)))
			continue
		}
		_ = f.Close()
	}
	return errs
}

// sqlitePath is the file a SQLite DSN names, as modernc.org/sqlite reads it: a plain path has
// its ?query dropped; a file: URI is SQLite's (file:name, file:///abs/name, mode=memory).
func sqlitePath(dsn string) (path string, inMemory bool) {
	path, query, _ := strings.Cut(dsn, "?")
	if rest, ok := strings.CutPrefix(path, "file:"); ok {
		if after, ok := strings.CutPrefix(rest, "//"); ok {
			// file://authority/path: the authority is empty or localhost.
			if i := strings.IndexByte(after, '/'); i >= 0 {
				rest = after[i:]
			} else {
				rest = ""
			}
		}
		if u, err := url.PathUnescape(rest); err == nil {
			rest = u
		}
		path = rest
		if q, err := url.ParseQuery(query); err == nil && q.Get("mode") == "memory" {
			return path, true
		}
	}
	return path, path == "" || path == ":memory:"
}

// postgresProblem parses the connection string as the store will (pgxpool.ParseConfig, pool
// parameters included), without connecting. The message never holds the connection string or
// its password: pgx quotes the string with the password removed only on a best-effort basis, so
// only its reason is kept; a quoted value in the reason that is part of what may be the password
// is redacted (pgx may take part of a malformed URL's password for a host or port, and quote it),
// and the rest is scrubbed of the connection string and every password candidate.
func postgresProblem(dsn string) error {
	_, err := pgxpool.ParseConfig(dsn)
	if err == nil {
		return nil
	}
	msg := "it is not a PostgreSQL URL or key=value string"
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		// pe.Error() is "cannot parse `<redacted dsn>`: <what> (<cause>)": keep <what> and <cause>.
		full := pe.Error()
		cause := ""
		if c := pe.Unwrap(); c != nil {
			cause = c.Error()
			full = strings.TrimSuffix(full, " ("+cause+")")
		}
		if i := strings.LastIndex(full, "`: "); i >= 0 {
			msg = full[i+len("`: "):]
		}
		if cause != "" {
			msg += ": " + cause
		}
	}
	pws := dsnPasswords(dsn)
	msg = core.Scrub(redactQuoted(msg, pws), append([]string{dsn}, pws...))
	return fmt.Errorf("store.dsn: the PostgreSQL connection string does not parse (%s): write it as postgres://user@host:5432/db or key=value pairs (host=db dbname=credsync)", msg)
}

// redactQuoted replaces every "quoted" value of msg that holds a password candidate, or (3
// characters or more) is part of one.
func redactQuoted(msg string, pws []string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(msg, '"')
		if i < 0 {
			break
		}
		j := strings.IndexByte(msg[i+1:], '"')
		if j < 0 {
			break
		}
		q := msg[i+1 : i+1+j]
		secret := false
		for _, pw := range pws {
			secret = secret || strings.Contains(q, pw) || (len(q) >= 3 && strings.Contains(pw, q))
		}
		if secret {
			q = core.Redacted
		}
		b.WriteString(msg[:i+1] + q + `"`)
		msg = msg[i+1+j+1:]
	}
	return b.String() + msg
}

// dsnPasswords is what in a connection string may be a password, longest first: the password
// of a URL's user info (for every '@' it may end at), and every password= value, each also
// percent-decoded.
func dsnPasswords(dsn string) []string {
	var pws []string
	add := func(s string) {
		if s == "" {
			return
		}
		pws = append(pws, s)
		if u, err := url.QueryUnescape(s); err == nil && u != s {
			pws = append(pws, u)
		}
	}
	if _, rest, ok := strings.Cut(dsn, "://"); ok {
		for i := 0; i < len(rest); i++ {
			if rest[i] != '@' {
				continue
			}
			if _, pw, ok := strings.Cut(rest[:i], ":"); ok {
				add(pw)
			}
		}
	}
	lower := strings.ToLower(dsn)
	for i := 0; ; {
		j := strings.Index(lower[i:], "password")
		if j < 0 {
			break
		}
		v := strings.TrimLeft(dsn[i+j+len("password"):], " =")
		if rest, ok := strings.CutPrefix(v, "'"); ok {
			if end := strings.IndexByte(rest, '\''); end >= 0 {
				rest = rest[:end]
			}
			add(rest)
		} else if end := strings.IndexAny(v, " \t\n&"); end >= 0 {
			add(v[:end])
		} else {
			add(v)
		}
		i += j + len("password")
	}
	sort.SliceStable(pws, func(a, b int) bool { return len(pws[a]) > len(pws[b]) })
	return pws
}

// reason is an error without the path a *fs.PathError repeats (the message names the file).
func reason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return ae.Err
	}
	return err.Error()
}
