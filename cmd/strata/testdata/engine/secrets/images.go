// Package secrets holds an image whose steps read two secrets.
package secrets

import (
	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/examples/hello"
)

// Secretive proves it read the secrets by writing their digests, and
// prints one by accident (sh -x echoes the assignment) so that the test
// can see it masked.
var Secretive = dsl.New("secretive").From(hello.Busybox).
	Secret("token", dsl.SecretEnv("STRATA_TEST_TOKEN")).
	Secret("key", dsl.SecretFile("key.txt")).
	Run(`sha256sum /run/secrets/token | cut -c1-64 > /token.sha
sha256sum /run/secrets/key | cut -c1-64 > /key.sha
t=$(cat /run/secrets/token)
echo "token is $t"
ls -l /run/secrets
`).
	Env("HAS_SECRETS", "yes")
