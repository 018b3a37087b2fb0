package server

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Version is the release version, set by the build: -ldflags "-X
// github.com/keyward/keyward/server.Version=v1.2.3" (make build and the
// Dockerfile set it from git describe). Empty: the module version from the
// build information.
var Version = ""

// BuildInfo describes the running binary.
type BuildInfo struct {
	Version   string // Version, else the main module's version ("(devel)" for a source build)
	Revision  string // VCS revision the binary was built from, "" when not stamped
	Modified  bool   // the work tree had uncommitted changes
	Time      string // commit time of Revision
	GoVersion string
}

// ReadBuildInfo reads the version and the VCS stamp of the running binary
// (runtime/debug.ReadBuildInfo).
func ReadBuildInfo() BuildInfo {
	b := BuildInfo{Version: Version, GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		if b.Version == "" {
			b.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			case "vcs.time":
				b.Time = s.Value
			}
		}
	}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	return b
}

// String is the version line: "v1.2.3 (revision 0123456789ab, modified, 2026-…, go1.26.8)".
func (b BuildInfo) String() string {
	var parts []string
	if b.Revision != "" {
		parts = append(parts, "revision "+b.Revision[:min(12, len(b.Revision))])
		if b.Modified {
			parts = append(parts, "modified")
		}
		if b.Time != "" {
			parts = append(parts, b.Time)
		}
	} else {
		parts = append(parts, "no VCS revision stamped")
	}
	parts = append(parts, b.GoVersion)
	return fmt.Sprintf("%s (%s)", b.Version, strings.Join(parts, ", "))
}
