package watermark

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// ReplicationMode is the watermark_replication setting: what a store whose
// database is replicated must show before a mark counts as durable.
type ReplicationMode string

// The modes.
const (
	// RequireSync: nothing is signed (the store is unavailable, /readyz not
	// ready) while commits are not acknowledged by a synchronous standby,
	// so a failover to that standby cannot lose a mark.
	RequireSync ReplicationMode = "require-sync"
	// WarnAsync: sign, and warn (log, /readyz details, metric) while they
	// are not.
	WarnAsync ReplicationMode = "warn"
	// IgnoreReplication: report when asked (start-up log line, /readyz
	// details, metric), never warn or refuse.
	IgnoreReplication ReplicationMode = "ignore"
)

// ParseReplicationMode checks a watermark_replication value.
func ParseReplicationMode(s string) (ReplicationMode, error) {
	switch m := ReplicationMode(s); m {
	case RequireSync, WarnAsync, IgnoreReplication:
		return m, nil
	}
	return "", fmt.Errorf("watermark_replication %q: want require-sync, warn or ignore", s)
}

// ReplicationState is what a replication check found.
type ReplicationState string

// The states, in ReplicationStates order.
const (
	// ReplicationSync: commits wait for, and are acknowledged by, as many
	// synchronous standbys as the server requires.
	ReplicationSync ReplicationState = "sync"
	// ReplicationAsync: commits do not wait for any standby
	// (synchronous_standby_names empty, or synchronous_commit local or
	// off): a failover may lose the last marks.
	ReplicationAsync ReplicationState = "async"
	// ReplicationBlocked: commits wait for synchronous standbys that are
	// not streaming; every write times out until they are back.
	ReplicationBlocked ReplicationState = "blocked"
	// ReplicationUnknown: the check could not be made (database
	// unreachable, a standby, no right to read pg_stat_replication).
	ReplicationUnknown ReplicationState = "unknown"
)

// ReplicationStates lists every state (metric labels).
var ReplicationStates = []ReplicationState{ReplicationSync, ReplicationAsync, ReplicationBlocked, ReplicationUnknown}

// ReplicationStatus is the result of one replication check.
type ReplicationStatus struct {
	Mode         ReplicationMode
	State        ReplicationState
	SyncStandbys int       // synchronous standbys streaming
	Detail       string    // one line for the log and /readyz, naming the settings seen (no error text)
	Err          error     // why the check could not be made (for the log only: it may name hosts)
	CheckedAt    time.Time // when the check ran
}

func (s ReplicationStatus) String() string {
	return fmt.Sprintf("%s (watermark_replication: %s): %s", s.State, s.Mode, s.Detail)
}

// ErrNotReplicated: under require-sync, commits are not acknowledged by a
// synchronous standby, so nothing may be signed. Errors wrapping it also
// wrap ErrUnavailable.
var ErrNotReplicated = errors.New("watermark commits are not acknowledged by a synchronous standby (watermark_replication: require-sync)")

// Replicated is an optional Store capability: a store on a replicated
// database checks, at start, after every reconnect and at a short interval,
// whether its commits are acknowledged by a synchronous standby
// (DESIGN §6), and applies the watermark_replication mode to Advance and
// Ready.
type Replicated interface {
	// SetReplicationMode sets the mode and the logger the checks report to,
	// runs the first check and logs it. Call it once, before the store
	// is used for signing.
	SetReplicationMode(ctx context.Context, mode ReplicationMode, log *slog.Logger) error
	// ReplicationStatus returns the latest check, made anew when it is
	// older than the store's check interval or a connection was made since.
	ReplicationStatus(ctx context.Context) ReplicationStatus
}
