// Package e2e holds the tests that run the real credsync binary as separate processes: killed
// with SIGKILL mid-rotation and restarted, two replicas sharing one PostgreSQL, and rotating at
// the source against a real PostgreSQL and MariaDB (source_test.go). The package has no code of
// its own; its tests build cmd/credsync once and start a throwaway PostgreSQL, and a throwaway
// MariaDB for the first test that needs one.
package e2e
