package examples_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/credsync/credsync/client"
	"github.com/credsync/credsync/config"
	"github.com/credsync/credsync/gateway"
)

// binary is credsync, built once: the examples' command lines are checked against its --help.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "credsync-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "credsync")
	build := exec.Command("go", "build", "-o", binary, "github.com/credsync/credsync/cmd/credsync")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "examples: build credsync:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// The image, as the Dockerfile builds it.
const (
	imageBinary  = "/usr/local/bin/credsync"
	imageConfig  = "/etc/credsync/credsync.yaml"
	imageDataDir = "/var/lib/credsync"
	imageUser    = 65532
)

// Secrets the binary reads from the environment itself, beside the config's ${VAR}s.
var binaryEnv = []string{"CREDSYNC_ENCRYPTION_KEY", "CREDSYNC_ENCRYPTION_OLD_KEYS", "CREDSYNC_ADDR"}

// samples stand in for the secrets every deployment leaves to the operator.
var samples = map[string]string{
	"CREDSYNC_ENCRYPTION_KEY": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)),
	"CREDSYNC_API_TOKEN":      "example-api-token-0123456789",
	"CREDSYNC_STATUS_TOKEN":   "example-status-token-0123456789",
	"FELT_API_TOKEN":          "example-felt-token",
	"DATABRAIN_SERVICE_TOKEN": "example-databrain-token",
	"RIVERGEN_ACCESS_TOKEN":   "example-rivergen-token",
	"POSTGRES_PASSWORD":       "example-postgres-password",
}

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	return b
}

func yamlDocs(t *testing.T, name string) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(read(t, name)))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if err != nil {
			require.ErrorContains(t, err, "EOF", name)
			return docs
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
}

// get walks a decoded YAML document: get(doc, "spec", "template", "spec").
func get(t *testing.T, v any, keys ...any) any {
	t.Helper()
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			require.True(t, ok, "want a mapping holding %q, have %T", k, v)
			v, ok = m[k]
			require.True(t, ok, "no key %q", k)
		case int:
			l, ok := v.([]any)
			require.True(t, ok, "want a list, have %T", v)
			require.Less(t, k, len(l))
			v = l[k]
		}
	}
	return v
}

func str(t *testing.T, v any, keys ...any) string {
	t.Helper()
	s, ok := get(t, v, keys...).(string)
	require.True(t, ok, "%v is not a string", keys)
	return s
}

func strs(t *testing.T, v any, keys ...any) []string {
	t.Helper()
	var out []string
	for _, x := range get(t, v, keys...).([]any) {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

var configRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// configVars are the ${VAR}s in the values of examples/credsync.yaml (not its comments).
func configVars(t *testing.T) []string {
	var root yaml.Node
	require.NoError(t, yaml.Unmarshal(read(t, "credsync.yaml"), &root))
	var vars []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			for _, m := range configRef.FindAllStringSubmatch(n.Value, -1) {
				if !slices.Contains(vars, m[1]) {
					vars = append(vars, m[1])
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	require.NotEmpty(t, vars)
	return vars
}

// deployment is what one example gives the binary.
type deployment struct {
	name    string
	env     map[string]string // what the process gets (secrets: samples)
	secrets []string          // the variables that come from its secret store, not its plain config
}

// load loads examples/credsync.yaml in d's environment and runs the gateway's preflight, as
// serve does before it opens anything.
func (d deployment) load(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse(read(t, "credsync.yaml"), func(k string) (string, bool) { v, ok := d.env[k]; return v, ok })
	require.NoError(t, err, "%s: the example config does not load in the environment it provides", d.name)
	require.NoError(t, gateway.Preflight(cfg, gateway.Options{Keys: gateway.KeysFromEnv(func(k string) string { return d.env[k] }, cfg.File.Store.EncryptionKeyFile)}),
		"%s: serve would refuse the example config", d.name)
	return cfg
}

// checkEnv: every ${VAR} of the config and the encryption key are provided, nothing else is,
// and every secret comes from the deployment's secret store.
func (d deployment) checkEnv(t *testing.T) {
	t.Helper()
	for _, v := range append(configVars(t), "CREDSYNC_ENCRYPTION_KEY") {
		require.Contains(t, d.env, v, "%s does not provide %s", d.name, v)
	}
	for k := range d.env {
		require.True(t, slices.Contains(configVars(t), k) || slices.Contains(binaryEnv, k),
			"%s provides %s, which neither the config nor the binary reads", d.name, k)
	}
	for _, s := range []string{"CREDSYNC_ENCRYPTION_KEY", "CREDSYNC_API_TOKEN", "CREDSYNC_STATUS_TOKEN", "FELT_API_TOKEN", "DATABRAIN_SERVICE_TOKEN", "RIVERGEN_ACCESS_TOKEN"} {
		require.Contains(t, d.secrets, s, "%s: %s is a secret: put it in the secret store, not the plain config", d.name, s)
	}
}

// checkCommand runs `credsync VERB --help` and checks every flag of args is one of VERB's.
func checkCommand(t *testing.T, where string, args []string) {
	t.Helper()
	require.NotEmpty(t, args, where)
	verb := args[0]
	out, err := exec.Command(binary, verb, "--help").CombinedOutput()
	require.NoError(t, err, "%s: credsync %s --help: %s", where, verb, out)
	require.Contains(t, string(out), "Usage: credsync "+verb, "%s: %s is not a verb of credsync", where, verb)
	for _, a := range args[1:] {
		if name, ok := strings.CutPrefix(a, "--"); ok {
			name, _, _ = strings.Cut(name, "=")
			require.Regexp(t, `(?m)^\s+-`+regexp.QuoteMeta(name)+`(\s|$)`, string(out), "%s: credsync %s has no flag --%s", where, verb, name)
		}
	}
}

// flagValue is the value of --name in args.
func flagValue(t *testing.T, args []string, name string) string {
	t.Helper()
	for i, a := range args {
		if a == "--"+name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	t.Fatalf("no --%s in %q", name, args)
	return ""
}

// stopBudget is the time serve may take after SIGTERM: --drain-delay + --shutdown-grace.
func stopBudget(t *testing.T, args []string) time.Duration {
	t.Helper()
	drain, err := time.ParseDuration(flagValue(t, args, "drain-delay"))
	require.NoError(t, err)
	grace, err := time.ParseDuration(flagValue(t, args, "shutdown-grace"))
	require.NoError(t, err)
	return drain + grace
}

func listenPort(t *testing.T, cfg *config.Config) string {
	t.Helper()
	_, port, err := net.SplitHostPort(cfg.File.Server.Listen)
	require.NoError(t, err)
	return port
}

// ---- the image ----

type dockerfile struct {
	instr map[string][]string // instruction → its arguments, in order
}

func parseDockerfile(t *testing.T) dockerfile {
	t.Helper()
	d := dockerfile{instr: map[string][]string{}}
	var line string
	sc := bufio.NewScanner(bytes.NewReader(read(t, "../Dockerfile")))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if c, ok := strings.CutSuffix(l, "\\"); ok {
			line += c + " "
			continue
		}
		line += l
		instr, rest, _ := strings.Cut(line, " ")
		d.instr[strings.ToUpper(instr)] = append(d.instr[strings.ToUpper(instr)], strings.TrimSpace(rest))
		line = ""
	}
	require.NoError(t, sc.Err())
	return d
}

// execForm parses a JSON-array instruction argument: ["a", "b"].
func execForm(t *testing.T, s string) []string {
	t.Helper()
	var v []string
	require.NoError(t, yaml.Unmarshal([]byte(s), &v), "not an exec form: %s", s)
	return v
}

func TestDockerfile(t *testing.T) {
	d := parseDockerfile(t)
	require.Equal(t, []string{"scratch"}, d.instr["FROM"], "one stage, FROM scratch: it must build with no registry")
	require.Equal(t, []string{fmt.Sprintf("%d:%d", imageUser, imageUser)}, d.instr["USER"])
	require.Equal(t, []string{imageDataDir}, d.instr["WORKDIR"], "a relative store.dsn (the default credsync.db) lands in the data volume")
	require.Equal(t, []string{`["` + imageDataDir + `"]`}, d.instr["VOLUME"])
	require.Equal(t, []string{"8080"}, d.instr["EXPOSE"])
	u, err := client.ParseAddr("")
	require.NoError(t, err)
	require.Equal(t, "8080", u.Port(), "the HEALTHCHECK's default address is the exposed port")

	entry := execForm(t, d.instr["ENTRYPOINT"][0])
	require.Equal(t, []string{imageBinary}, entry)
	cmd := execForm(t, d.instr["CMD"][0])
	checkCommand(t, "Dockerfile CMD", cmd)
	require.Equal(t, "serve", cmd[0])
	require.Equal(t, imageConfig, flagValue(t, cmd, "config"))

	require.Len(t, d.instr["HEALTHCHECK"], 1)
	hc := d.instr["HEALTHCHECK"][0]
	_, form, ok := strings.Cut(hc, "CMD ")
	require.True(t, ok, hc)
	hcArgs := execForm(t, form)
	require.Equal(t, imageBinary, hcArgs[0], "no shell in the image: the healthcheck runs the binary")
	checkCommand(t, "HEALTHCHECK", hcArgs[1:])
	require.Equal(t, "healthcheck", hcArgs[1])

	labels := strings.Join(d.instr["LABEL"], " ")
	for _, l := range []string{"title", "description", "version", "revision", "created", "source", "licenses"} {
		require.Contains(t, labels, "org.opencontainers.image."+l+"=")
	}
	require.Contains(t, labels, `org.opencontainers.image.licenses="Apache-2.0"`)

	cfg, err := config.Parse([]byte("server:\n  api_tokens: [{name: a, token: 0123456789abcdef}]\nplatforms:\n  r: {vendor: rivergen, base_url: https://x.example, token: t}\nsources:\n  s:\n    targets: [{platform: r, data_source_id: 1}]\n"), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	require.Equal(t, "sqlite", cfg.File.Store.Driver)
	require.False(t, filepath.IsAbs(cfg.File.Store.DSN), "the default SQLite file is relative to the working directory, the image's data volume")
}

// ---- docker compose ----

// composeVar is compose's own interpolation from the shell: ${NAME}, ${NAME:?message}, ${NAME:-default}.
var composeVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[?-][^}]*)?\}`)

func interpolate(t *testing.T, s string) string {
	return composeVar.ReplaceAllStringFunc(s, func(m string) string {
		name := composeVar.FindStringSubmatch(m)[1]
		v, ok := samples[name]
		require.True(t, ok, "compose reads ${%s} from the shell: add a sample for it", name)
		return v
	})
}

func TestCompose(t *testing.T) {
	docs := yamlDocs(t, "docker-compose.yaml")
	require.Len(t, docs, 1)
	services := get(t, docs[0], "services").(map[string]any)
	require.Equal(t, "postgres:15", str(t, services, "postgres", "image"), "the PostgreSQL the tests run (internal/pgtest)")
	pgPassword := interpolate(t, str(t, services, "postgres", "environment", "POSTGRES_PASSWORD"))

	var gateways []string
	for name := range services {
		if strings.HasPrefix(name, "credsync-") {
			gateways = append(gateways, name)
		}
	}
	require.Len(t, gateways, 2, "two gateways")
	hosts := map[string]bool{}
	for _, name := range gateways {
		svc := services[name]
		require.Equal(t, "credsync:dev", str(t, svc, "image"), "the image make docker builds")
		args := strs(t, svc, "command")
		checkCommand(t, name+" command", args)
		require.Equal(t, "serve", args[0])

		d := deployment{name: "compose " + name, env: map[string]string{}}
		for k, v := range get(t, svc, "environment").(map[string]any) {
			s := fmt.Sprint(v)
			if composeVar.MatchString(s) {
				if !strings.HasPrefix(k, "CREDSYNC_STORE_DSN") {
					d.secrets = append(d.secrets, k) // from the operator's shell, not this file
				}
				s = interpolate(t, s)
			}
			d.env[k] = s
		}
		d.checkEnv(t)
		cfg := d.load(t)
		require.Equal(t, "postgres", cfg.File.Store.Driver, "several gateways share PostgreSQL")
		dsn, err := url.Parse(cfg.File.Store.DSN)
		require.NoError(t, err)
		require.Equal(t, "postgres:5432", dsn.Host, "the DSN names the postgres service")
		pw, _ := dsn.User.Password()
		require.Equal(t, pgPassword, pw, "the gateways use the password PostgreSQL is started with")
		require.Contains(t, []string{"0.0.0.0", ""}, strings.Split(cfg.File.Server.Listen, ":")[0], "in a container, listen on every interface")
		_, hasAddr := d.env["CREDSYNC_ADDR"]
		require.False(t, hasAddr)
		require.Equal(t, "8080", listenPort(t, cfg), "the image's HEALTHCHECK checks 127.0.0.1:8080")
		ports := strs(t, svc, "ports")
		require.Len(t, ports, 1)
		require.True(t, strings.HasSuffix(ports[0], ":"+listenPort(t, cfg)), "%s publishes the port the gateway listens on: %s", name, ports[0])

		volumes := strs(t, svc, "volumes")
		require.Contains(t, volumes, "./credsync.yaml:"+flagValue(t, args, "config")+":ro", "the example config is mounted where serve reads it")
		require.Equal(t, imageConfig, flagValue(t, args, "config"))
		require.Contains(t, strs(t, svc, "tmpfs"), "/tmp")
		require.Equal(t, true, get(t, svc, "read_only"))
		grace, err := time.ParseDuration(str(t, svc, "stop_grace_period"))
		require.NoError(t, err)
		require.Greater(t, grace, stopBudget(t, args), "compose waits longer than drain + shutdown grace before SIGKILL")
		require.Equal(t, "service_healthy", str(t, svc, "depends_on", "postgres", "condition"))
		hosts[str(t, svc, "hostname")] = true
	}
	require.Len(t, hosts, 2, "each gateway has its own hostname: the default replica_id is <hostname>:<listen>")
}

// ---- Kubernetes ----

type kube struct {
	objects map[string]map[string]any // "Kind/name" → object
}

func loadKube(t *testing.T) kube {
	t.Helper()
	k := kube{objects: map[string]map[string]any{}}
	kust := yamlDocs(t, "kubernetes/kustomization.yaml")[0]
	files, err := filepath.Glob("kubernetes/*.yaml")
	require.NoError(t, err)
	resources := strs(t, kust, "resources")
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		require.Contains(t, resources, filepath.Base(f), "kustomization.yaml lists every manifest")
	}
	for _, r := range resources {
		for _, d := range yamlDocs(t, filepath.Join("kubernetes", r)) {
			k.objects[str(t, d, "kind")+"/"+str(t, d, "metadata", "name")] = d
		}
	}
	return k
}

func (k kube) get(t *testing.T, kind, name string) map[string]any {
	t.Helper()
	o, ok := k.objects[kind+"/"+name]
	require.True(t, ok, "no %s %s in examples/kubernetes", kind, name)
	return o
}

func TestKubernetes(t *testing.T) {
	k := loadKube(t)
	dep := k.get(t, "Deployment", "credsync")
	require.Equal(t, 2, get(t, dep, "spec", "replicas"))
	labels := get(t, dep, "spec", "template", "metadata", "labels")
	require.Equal(t, get(t, dep, "spec", "selector", "matchLabels"), labels)
	pod := get(t, dep, "spec", "template", "spec")
	require.Equal(t, true, get(t, pod, "securityContext", "runAsNonRoot"))
	require.Equal(t, imageUser, get(t, pod, "securityContext", "runAsUser"), "the image's user")
	containers := get(t, pod, "containers").([]any)
	require.Len(t, containers, 1)
	c := containers[0]
	require.Equal(t, "credsync:dev", str(t, c, "image"))
	require.Equal(t, true, get(t, c, "securityContext", "readOnlyRootFilesystem"))
	require.Equal(t, false, get(t, c, "securityContext", "allowPrivilegeEscalation"))
	require.Equal(t, []string{"ALL"}, strs(t, c, "securityContext", "capabilities", "drop"))

	args := strs(t, c, "args")
	checkCommand(t, "Deployment args", args)
	require.Equal(t, "serve", args[0])
	grace := get(t, pod, "terminationGracePeriodSeconds").(int)
	require.Greater(t, time.Duration(grace)*time.Second, stopBudget(t, args), "Kubernetes waits longer than drain + shutdown grace before SIGKILL")

	// Volumes: the config where serve reads it, an emptyDir at /tmp.
	volumes := map[string]any{}
	for _, v := range get(t, pod, "volumes").([]any) {
		volumes[str(t, v, "name")] = v
	}
	mounts := map[string]string{}
	for _, m := range get(t, c, "volumeMounts").([]any) {
		mounts[str(t, m, "mountPath")] = str(t, m, "name")
	}
	cfgPath := flagValue(t, args, "config")
	cfgVol := volumes[mounts[path.Dir(cfgPath)]]
	require.NotNil(t, cfgVol, "a volume is mounted at %s", path.Dir(cfgPath))
	cm := k.get(t, "ConfigMap", str(t, cfgVol, "configMap", "name"))
	require.Equal(t, string(read(t, "credsync.yaml")), str(t, cm, "data", path.Base(cfgPath)),
		"the ConfigMap's %s is a copy of examples/credsync.yaml", path.Base(cfgPath))
	require.NotNil(t, volumes[mounts["/tmp"]], "a writable /tmp on a read-only root")
	require.Contains(t, volumes[mounts["/tmp"]], "emptyDir")

	// The environment: ConfigMap (plain) + Secret.
	d := deployment{name: "kubernetes", env: map[string]string{}}
	for _, ef := range get(t, c, "envFrom").([]any) {
		ef := ef.(map[string]any)
		if ref, ok := ef["configMapRef"]; ok {
			for key, v := range get(t, k.get(t, "ConfigMap", str(t, ref, "name")), "data").(map[string]any) {
				d.env[key] = fmt.Sprint(v)
			}
		}
		if ref, ok := ef["secretRef"]; ok {
			for key, v := range get(t, k.get(t, "Secret", str(t, ref, "name")), "stringData").(map[string]any) {
				d.secrets = append(d.secrets, key)
				d.env[key] = fmt.Sprint(v)
			}
		}
	}
	require.NotContains(t, d.env, "CREDSYNC_ADDR")
	placeholders := deployment{name: d.name, env: map[string]string{}}
	for key, v := range d.env {
		placeholders.env[key] = v
		if s, ok := samples[key]; ok {
			d.env[key] = s
		}
	}
	d.checkEnv(t)
	_, err := config.Parse(read(t, "credsync.yaml"), func(key string) (string, bool) { v, ok := placeholders.env[key]; return v, ok })
	require.Error(t, err, "secret.yaml's placeholders are refused: nobody runs on them by mistake")
	cfg := d.load(t)
	require.Equal(t, "postgres", cfg.File.Store.Driver, "two replicas share PostgreSQL")
	dsn, err := url.Parse(cfg.File.Store.DSN)
	require.NoError(t, err)
	pgSvc := k.get(t, "Service", dsn.Hostname())
	require.Equal(t, 5432, get(t, pgSvc, "spec", "ports", 0, "port"), "the DSN names the PostgreSQL Service and its port")
	require.Equal(t, dsn.Port(), "5432")
	pg := k.get(t, "StatefulSet", dsn.Hostname())
	require.Equal(t, "postgres:15", str(t, pg, "spec", "template", "spec", "containers", 0, "image"))

	// Ports and probes.
	port := listenPort(t, cfg)
	var httpPort int
	for _, p := range get(t, c, "ports").([]any) {
		if str(t, p, "name") == "http" {
			httpPort = get(t, p, "containerPort").(int)
		}
	}
	require.Equal(t, port, strconv.Itoa(httpPort), "the container port is the port the gateway listens on")
	probePort := func(probe string) string {
		p := get(t, c, probe, "httpGet", "port")
		if p == "http" {
			return strconv.Itoa(httpPort)
		}
		return fmt.Sprint(p)
	}
	for probe, want := range map[string]string{"livenessProbe": "/healthz", "startupProbe": "/healthz", "readinessProbe": "/readyz"} {
		require.Equal(t, want, str(t, c, probe, "httpGet", "path"), probe)
		require.Equal(t, port, probePort(probe), probe)
	}
	drain, err := time.ParseDuration(flagValue(t, args, "drain-delay"))
	require.NoError(t, err)
	readiness := time.Duration(get(t, c, "readinessProbe", "periodSeconds").(int)*get(t, c, "readinessProbe", "failureThreshold").(int)) * time.Second
	require.Greater(t, drain, readiness, "the drain outlasts the readiness probe's verdict")

	svc := k.get(t, "Service", "credsync")
	require.Equal(t, labels, get(t, svc, "spec", "selector"))
	require.Equal(t, "http", get(t, svc, "spec", "ports", 0, "targetPort"))

	pdb := k.get(t, "PodDisruptionBudget", "credsync")
	require.Equal(t, labels, get(t, pdb, "spec", "selector", "matchLabels"))
	require.Equal(t, 1, get(t, pdb, "spec", "minAvailable"))
}

// ---- systemd ----

// unit is a systemd unit file: section → key → values, in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, name string) unit {
	t.Helper()
	u := unit{}
	section := ""
	for _, l := range strings.Split(string(read(t, name)), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "["):
			section = strings.Trim(l, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(l, "=")
			require.True(t, ok, "%s: %q", name, l)
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

func (u unit) one(t *testing.T, key string) string {
	t.Helper()
	v := u["Service"][key]
	require.Len(t, v, 1, "[Service] %s", key)
	return v[0]
}

// envFile reads KEY=VALUE lines as systemd's EnvironmentFile= does (a # starts a comment line).
func envFile(t *testing.T, name string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, l := range strings.Split(string(read(t, name)), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		require.True(t, ok, "%s: %q", name, l)
		require.NotContains(t, v, "#", "%s: after a value, # is part of the value, not a comment", name)
		env[k] = v
	}
	return env
}

func TestSystemdUnit(t *testing.T) {
	u := parseUnit(t, "systemd/credsync.service")
	start := strings.Fields(u.one(t, "ExecStart"))
	require.Equal(t, imageBinary, start[0], "the path the unit's comment installs the binary to")
	checkCommand(t, "ExecStart", start[1:])
	require.Equal(t, "serve", start[1])
	cfgPath := flagValue(t, start, "config")

	// Hardening.
	require.True(t, u.one(t, "DynamicUser") == "yes" || len(u["Service"]["User"]) == 1, "its own user")
	for k, v := range map[string]string{
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"PrivateDevices": "yes", "StateDirectory": "credsync", "ConfigurationDirectory": "credsync",
		"CapabilityBoundingSet": "",
	} {
		require.Equal(t, v, u.one(t, k), "[Service] %s", k)
	}
	require.Equal(t, "/etc/"+u.one(t, "ConfigurationDirectory"), path.Dir(cfgPath), "--config is in the unit's ConfigurationDirectory")
	stateDir := "/var/lib/" + u.one(t, "StateDirectory")
	require.Equal(t, stateDir, u.one(t, "WorkingDirectory"))
	stop, err := time.ParseDuration(u.one(t, "TimeoutStopSec"))
	require.NoError(t, err)
	require.Greater(t, stop, stopBudget(t, start), "systemd waits longer than drain + shutdown grace before SIGKILL")
	require.Equal(t, "/bin/kill -HUP $MAINPID", u.one(t, "ExecReload"), "systemctl reload sends SIGHUP, which reloads the config")

	// The environment: Environment= (plain) + EnvironmentFile= (secrets).
	d := deployment{name: "systemd", env: map[string]string{}}
	for _, kv := range u["Service"]["Environment"] {
		k, v, _ := strings.Cut(kv, "=")
		d.env[k] = v
	}
	require.Equal(t, []string{"/etc/credsync/credsync.env"}, u["Service"]["EnvironmentFile"])
	require.Equal(t, "/etc/"+u.one(t, "ConfigurationDirectory"), path.Dir(u["Service"]["EnvironmentFile"][0]))
	for k, v := range envFile(t, "systemd/credsync.env") {
		d.secrets = append(d.secrets, k)
		d.env[k] = v
		if s, ok := samples[k]; ok {
			d.env[k] = s
		}
	}
	d.checkEnv(t)
	require.Equal(t, "sqlite", d.env["CREDSYNC_STORE_DRIVER"])
	require.Equal(t, stateDir, filepath.Dir(d.env["CREDSYNC_STORE_DSN"]), "ProtectSystem=strict: the SQLite file must be in the StateDirectory, the one writable place")
	require.Equal(t, "127.0.0.1", strings.Split(d.env["CREDSYNC_LISTEN"], ":")[0], "on a host, loopback by default")
	// /var/lib/credsync is not there on the test machine: check the same file in a temporary one.
	d.env["CREDSYNC_STORE_DSN"] = filepath.Join(t.TempDir(), filepath.Base(d.env["CREDSYNC_STORE_DSN"]))
	d.load(t)
}
