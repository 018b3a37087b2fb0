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
