package databrain

import (
	"context"
	"fmt"

	"github.com/credsync/credsync/core"
)

var _ core.Checker = (*Adapter)(nil)

// Check implements core.Checker, and can only answer unknown, without calling Databrain. Its API
// (seed 002) documents one call for a datasource: PUT /api/v2/datasource, a full replacement that
// tests the database connection and re-caches the schema. There is no read: no GET of a
// datasource, no list, no dry run, no token introspection. Even a PUT built to be refused (a
// missing field) is not safe, since the doc does not say in which order Databrain checks the
// token, the name and the body, and a PUT it accepts replaces the datasource. So a check cannot
// prove that the service token is valid, that the datasource named here exists, or that it has
// this datasourceType; the first rotation does (401 unauthorized, DATASOURCE_NAME_ERROR /
// DATASOURCE_NOT_FOUND, CREDENTIAL_TEST_FAILED).
func (a *Adapter) Check(context.Context) core.CheckResult {
	return core.CheckResult{Status: core.CheckUnknown, Message: fmt.Sprintf(
		"Databrain datasource %q (%s) not checked: Databrain's API has only the PUT that replaces a datasource, no read, so nothing can be checked without changing it",
		a.name, a.dsType)}
}
