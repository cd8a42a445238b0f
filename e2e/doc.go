// Package e2e holds the tests that run the real credsync binary as separate processes: killed
// with SIGKILL mid-rotation and restarted, and two replicas sharing one PostgreSQL. The package
// has no code of its own; its tests build cmd/credsync once and start a throwaway PostgreSQL.
package e2e
