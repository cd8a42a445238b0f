package main

import "io"

// clientUsage documents the client verbs in credsync --help (inserted before "credsync help").
const clientUsage = ""

// clientExitCodes is appended to the exit-code line of credsync --help.
const clientExitCodes = ""

// clientCommands are the verbs that talk to a running gateway (rotate, status, plan, sources)
// or check a config's platforms (check).
var clientCommands = map[string]func(args []string, stdout, stderr io.Writer) int{}
