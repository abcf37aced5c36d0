package strata

import (
	"fmt"
	"runtime/debug"

	"github.com/strata-build/strata/dsl"
)

// ModuleVersion is strata's version: the module version the go command recorded
// in the binary (go install ...@v1.2.3, go get -tool), else "(devel)"
// with the VCS revision when the build recorded one.
func ModuleVersion() string {
	v := dsl.ModuleVersion()
	if v != "(devel)" {
		return v
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		var rev, dirty string
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+dirty"
				}
			}
		}
		if len(rev) > 12 {
			return fmt.Sprintf("(devel) %s%s", rev[:12], dirty)
		}
	}
	return v
}
