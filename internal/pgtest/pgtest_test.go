package pgtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyward/keyward/internal/pgtest"
)

func query(t *testing.T, dsn, sql string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, sql).Scan(&n)
	return n, err
}

// A stopped cluster refuses connections; restarted, it has its data back on
// the same port, and fsync is on (the durability tests rely on it).
func TestCluster_RestartKeepsDataAndPort(t *testing.T) {
	c := pgtest.Start(t)
	dsn := c.CreateDB(t, "keep")
	var fsync string
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS kept (n int); INSERT INTO kept VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SHOW fsync`).Scan(&fsync); err != nil || fsync != "on" {
		t.Fatalf("fsync = %q, %v; want on", fsync, err)
	}
	conn.Close(ctx)
	c.Stop()
	if c.Reachable() {
		t.Fatal("stopped cluster still accepts connections")
	}
	if _, err := query(t, dsn, `SELECT 1`); err == nil {
		t.Fatal("query on a stopped cluster succeeded")
	}
	c.Start()
	n, err := query(t, dsn, `SELECT n FROM kept`)
	if err != nil || n != 42 {
		t.Fatalf("after restart: %d, %v; want 42", n, err)
	}
}

// A standby made with StartStandby streams from its primary under its name
// (synchronous once synchronous_standby_names names it); after the primary
// is killed and the standby promoted, it accepts writes and holds every
// commit the primary acknowledged, and it did not inherit the primary's
// synchronous_standby_names (set after the base backup).
func TestCluster_StandbyPromotedAfterPrimaryKilled(t *testing.T) {
	p := pgtest.Start(t)
	s := p.StartStandby(t, "standby1")
	p.WaitStandby(t, "standby1", "async")
	p.AlterSystem(t, "synchronous_standby_names", "'standby1'")
	p.WaitStandby(t, "standby1", "sync")
	p.Exec(t, `CREATE TABLE kept (n int)`)
	for i := range 20 {
		p.Exec(t, `INSERT INTO kept VALUES ($1)`, i)
	}
	if _, err := query(t, s.DSN(), `CREATE TABLE w (n int)`); err == nil {
		t.Fatal("a standby accepted a write")
	}
	p.Kill()
	if p.Reachable() {
		t.Fatal("killed primary still accepts connections")
	}
	s.Promote(t)
	s.Exec(t, `INSERT INTO kept VALUES (100)`)
	n, err := query(t, s.DSN(), `SELECT count(*)::int FROM kept`)
	if err != nil || n != 21 {
		t.Fatalf("promoted standby holds %d rows (%v), want 21", n, err)
	}
	names, err := query(t, s.DSN(), `SELECT length(current_setting('synchronous_standby_names'))`)
	if err != nil || names != 0 {
		t.Fatalf("promoted standby's synchronous_standby_names has length %d (%v), want empty", names, err)
	}
}
