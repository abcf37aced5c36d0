package runtime

import (
	"os"
	"strconv"
)

// DefaultPath is the PATH of every step unless the image sets its own.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// passThrough are the only host variables a step sees, so that a build
// does not depend on whoever's shell started it; proxies are passed so that
// package managers work behind the same proxy as the host.
var passThrough = []string{
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "FTP_PROXY",
	"http_proxy", "https_proxy", "no_proxy", "ftp_proxy",
	"TERM",
}

// baseEnv is the environment of a step before the image's own variables.
func baseEnv(epoch int64) []string {
	env := []string{"PATH=" + DefaultPath, "HOME=/root", "SOURCE_DATE_EPOCH=" + strconv.FormatInt(epoch, 10)}
	for _, k := range passThrough {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
