// Package examples holds no code: it is where the deployment examples live (credsync.yaml,
// docker-compose.yaml, kubernetes/, systemd/) and examples_test.go, which checks that they name
// the ports, paths, environment variables, verbs and flags the binary really uses, and that the
// config loads and passes the gateway's preflight in the environment each of them provides.
package examples
