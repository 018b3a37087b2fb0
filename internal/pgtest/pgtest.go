// Package pgtest starts throwaway PostgreSQL clusters (initdb into a temp dir, pg_ctl on a free port) for keyward's tests.
package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyward/keyward/internal/testutil"
)

// Cluster is a PostgreSQL cluster started by a test. It listens on
// 127.0.0.1:Port with trust authentication for the superuser "postgres".
type Cluster struct {
	Port int
	Dir  string // the cluster's base directory (data dir, socket, log)
	Name string // cluster_name, sent as application_name by a standby; "" for none

	bin     string     // directory holding initdb, pg_ctl, postgres
	asUser  *user.User // run the server as this OS user (root only)
	mu      sync.Mutex // serializes Start/Stop
	running bool
	t       testing.TB
}

// binDir finds the directory of initdb and pg_ctl: $PATH first, then the
// newest /usr/lib/postgresql/*/bin (Debian keeps them off $PATH).
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(matches, func(i, j int) bool { return pgVersion(matches[i]) > pgVersion(matches[j]) })
	for _, m := range matches {
		dir := filepath.Dir(m)
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	return "", fmt.Errorf("initdb and pg_ctl not found on $PATH nor under /usr/lib/postgresql/*/bin (Debian package postgresql)")
}

func pgVersion(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

// Start creates and starts a cluster; it is stopped and removed when the
// test ends. Missing PostgreSQL binaries skip the test (fail under CI=true).
// As root the server runs as the OS user "postgres", which must exist.
func Start(t testing.TB) *Cluster {
	t.Helper()
	c := newCluster(t, "")
	if out, err := c.run("initdb", "-D", c.dataDir(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	c.startOnFreePort()
	return c
}

// StartStandby creates a streaming standby of c (pg_basebackup -R: a base
// backup with standby.signal and primary_conninfo) and starts it. The
// standby's cluster_name, which its WAL receiver sends as application_name,
// is name: synchronous_standby_names on c can name it. It is stopped and
// removed when the test ends. Settings made on c with AlterSystem before the
// call are copied to the standby (postgresql.auto.conf is in the backup),
// later ones are not.
func (c *Cluster) StartStandby(t testing.TB, name string) *Cluster {
	t.Helper()
	s := newCluster(t, name)
	if out, err := s.run("pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(c.Port), "-U", "postgres",
		"-D", s.dataDir(), "-R", "-X", "stream", "-c", "fast", "--no-sync"); err != nil {
		t.Fatalf("pg_basebackup: %v\n%s", err, out)
	}
	s.startOnFreePort()
	return s
}

// StartPair starts a primary and a streaming standby of it named standby1,
// and waits until the standby streams: synchronously when synchronous is
// true (synchronous_standby_names = 'standby1' on the primary only, so a
// promoted standby has none), asynchronously otherwise.
func StartPair(t testing.TB, synchronous bool) (primary, standby *Cluster) {
	t.Helper()
	primary = Start(t)
	standby = primary.StartStandby(t, "standby1")
	if !synchronous {
		primary.WaitStandby(t, standby.Name, "async")
		return primary, standby
	}
	primary.AlterSystem(t, "synchronous_standby_names", "'"+standby.Name+"'")
	primary.WaitStandby(t, standby.Name, "sync")
	return primary, standby
}

// MultiHostDSN returns the URL naming every cluster's "postgres" database
// in order, with target_session_attrs=read-write: a client uses whichever
// accepts writes (the primary).
func MultiHostDSN(clusters ...*Cluster) string {
	hosts := make([]string, len(clusters))
	for i, c := range clusters {
		hosts[i] = "127.0.0.1:" + strconv.Itoa(c.Port)
	}
	return "postgres://postgres@" + strings.Join(hosts, ",") + "/postgres?sslmode=disable&target_session_attrs=read-write"
}

// newCluster finds the binaries and makes the cluster's base directory,
// removed (after stopping the server) when the test ends.
func newCluster(t testing.TB, name string) *Cluster {
	t.Helper()
	bin, err := binDir()
	testutil.Need(t, "postgresql (initdb, pg_ctl)", err)
	c := &Cluster{bin: bin, Name: name, t: t}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		testutil.Need(t, "OS user postgres (PostgreSQL refuses to run as root)", err)
		c.asUser = u
	}
	// Not t.TempDir: its parents are 0700 root, which the postgres user
	// cannot traverse.
	base, err := os.MkdirTemp("", "keyward-pg-")
	if err != nil {
		t.Fatal(err)
	}
	c.Dir = base
	t.Cleanup(func() {
		c.Stop()
		os.RemoveAll(base)
	})
	if err := os.Chmod(base, 0o711); err != nil {
		t.Fatal(err)
	}
	if c.asUser != nil {
		uid, _ := strconv.Atoi(c.asUser.Uid)
		gid, _ := strconv.Atoi(c.asUser.Gid)
		if err := os.Chown(base, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// startOnFreePort starts the server on a free port, trying another if the
// port was taken in between.
func (c *Cluster) startOnFreePort() {
	c.t.Helper()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		c.Port = testutil.FreePort(c.t)
		if lastErr = c.start(); lastErr == nil {
			return
		}
	}
	c.t.Fatalf("pg_ctl start: %v", lastErr)
}

func (c *Cluster) dataDir() string { return filepath.Join(c.Dir, "data") }

// run runs one of the cluster's programs, as the postgres user when root.
func (c *Cluster) run(prog string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	path := filepath.Join(c.bin, prog)
	var cmd *exec.Cmd
	if c.asUser != nil {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", c.asUser.Username, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = c.Dir
	// pg_ctl's server inherits stdout/stderr unless -l is given; it is.
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c *Cluster) start() error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200", c.Port, c.Dir)
	if c.Name != "" {
		opts += " -c cluster_name=" + c.Name
	}
	out, err := c.run("pg_ctl", "-D", c.dataDir(), "-l", filepath.Join(c.Dir, "server.log"), "-o", opts, "-w", "-t", "60", "start")
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(c.Dir, "server.log"))
		return fmt.Errorf("%v\n%s\nserver.log:\n%s", err, out, tail(string(log), 40))
	}
	c.running = true
	return nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// DSN returns the URL of the cluster's "postgres" database.
func (c *Cluster) DSN() string { return c.DSNFor("postgres") }

// DSNFor returns the URL of database db on the cluster.
func (c *Cluster) DSNFor(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, db)
}

// CreateDB creates a fresh database and returns its URL.
func (c *Cluster) CreateDB(t testing.TB, db string) string {
	t.Helper()
	out, err := c.run("createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(c.Port), "-U", "postgres", db)
	if err != nil {
		t.Fatalf("createdb %s: %v\n%s", db, err, out)
	}
	return c.DSNFor(db)
}

// Stop stops the server (fast shutdown: open connections are cut, as when
// the database host goes away). Stopping a stopped cluster does nothing.
func (c *Cluster) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return
	}
	if out, err := c.run("pg_ctl", "-D", c.dataDir(), "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
		c.t.Errorf("pg_ctl stop: %v\n%s", err, out)
		return
	}
	c.running = false
}

// Kill stops the server with pg_ctl stop -m immediate: no shutdown
// checkpoint and no goodbye to clients or standbys, as when the database
// host dies. Killing a stopped cluster does nothing.
func (c *Cluster) Kill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return
	}
	if out, err := c.run("pg_ctl", "-D", c.dataDir(), "-m", "immediate", "-w", "-t", "60", "stop"); err != nil {
		c.t.Errorf("pg_ctl stop -m immediate: %v\n%s", err, out)
		return
	}
	c.running = false
}

// Promote turns a standby into a primary (pg_ctl promote) and waits until
// it accepts writes.
func (c *Cluster) Promote(t testing.TB) {
	t.Helper()
	if out, err := c.run("pg_ctl", "-D", c.dataDir(), "-w", "-t", "60", "promote"); err != nil {
		t.Fatalf("pg_ctl promote: %v\n%s", err, out)
	}
}

// Exec runs SQL on the cluster's "postgres" database as the superuser.
func (c *Cluster) Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN())
	if err != nil {
		t.Fatalf("connect to %s: %v", c.DSN(), err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// AlterSystem sets a server parameter with ALTER SYSTEM (written to this
// cluster's postgresql.auto.conf only, so not replicated) and reloads the
// configuration. Pass value as SQL, quoted: AlterSystem(t,
// "synchronous_standby_names", "'standby1'").
func (c *Cluster) AlterSystem(t testing.TB, name, value string) {
	t.Helper()
	c.Exec(t, fmt.Sprintf("ALTER SYSTEM SET %s = %s", name, value))
	c.Exec(t, "SELECT pg_reload_conf()")
}

// WaitStandby waits (30 s at most) until the standby whose application_name
// is name streams from c with pg_stat_replication.sync_state syncState
// ("sync", "async", "quorum", "potential").
func (c *Cluster) WaitStandby(t testing.TB, name, syncState string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := pgx.Connect(ctx, c.DSN())
		if err == nil {
			got = ""
			// No row yet (not streaming) leaves got empty: try again.
			_ = conn.QueryRow(ctx, `SELECT sync_state FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'`, name).Scan(&got)
			conn.Close(context.Background())
		}
		cancel()
		if got == syncState {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("standby %s never streamed with sync_state %s (last: %q)", name, syncState, got)
}

// Start restarts a stopped cluster on the same port and data directory.
func (c *Cluster) Start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return
	}
	if err := c.start(); err != nil {
		c.t.Fatalf("pg_ctl start (restart): %v", err)
	}
}

// Reachable reports whether the server accepts TCP connections.
func (c *Cluster) Reachable() bool {
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(c.Port), time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}
