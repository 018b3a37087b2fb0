package watermark_test

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/keyward/keyward/watermark"
	_ "github.com/keyward/keyward/watermark/file"
)

func TestAbove_IsStrictLexicographicOrder(t *testing.T) {
	for _, c := range []struct {
		l, r, l2, r2 int64
		want         bool
	}{
		{5, 0, 4, 9, true},   // higher level, lower round
		{5, 1, 5, 0, true},   // same level, higher round
		{5, 0, 5, 0, false},  // equal is not above
		{5, 0, 5, 1, false},  // same level, lower round
		{4, 9, 5, 0, false},  // lower level
		{0, 0, -1, 0, true},  // plain integers
		{-1, 5, 0, 0, false}, // negative level below zero
		{math.MaxInt64, 0, math.MinInt64, math.MaxInt64, true},
	} {
		if got := watermark.Above(c.l, c.r, c.l2, c.r2); got != c.want {
			t.Errorf("Above(%d, %d, %d, %d) = %v, want %v", c.l, c.r, c.l2, c.r2, got, c.want)
		}
	}
}

func TestOpen_UnknownSchemeIsError(t *testing.T) {
	for _, u := range []string{"nosuch:///x", "/var/lib/keyward/watermarks", "::"} {
		if s, err := watermark.Open(context.Background(), u); err == nil {
			s.Close()
			t.Errorf("Open(%q) passed, want an error", u)
		}
	}
}

func TestOpen_FileSchemeIsRegistered(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wm")
	s, err := watermark.Open(context.Background(), "file://"+dir)
	if err != nil {
		t.Fatalf("Open(file://%s): %v", dir, err)
	}
	defer s.Close()
	if err := s.Ready(context.Background()); err != nil {
		t.Fatalf("Ready: %v", err)
	}
}
