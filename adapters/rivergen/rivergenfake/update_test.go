package rivergenfake_test

// go test ./... -update must work in every package: the golden helper registers the flag.
import _ "github.com/credsync/credsync/internal/golden"
