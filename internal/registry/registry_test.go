package registry

import (
	"slices"
	"testing"
)

func TestRegistry_LookupAndSortedNames(t *testing.T) {
	r := New[int]("test: scheme")
	for i, name := range []string{"postgres", "file", "postgresql"} {
		r.Register(name, i)
	}
	for _, c := range []struct {
		name string
		want int
		ok   bool
	}{
		{"file", 1, true},
		{"postgres", 0, true},
		{"postgresql", 2, true},
		{"File", 0, false},
		{"", 0, false},
	} {
		if got, ok := r.Lookup(c.name); got != c.want || ok != c.ok {
			t.Errorf("Lookup(%q) = %d, %v; want %d, %v", c.name, got, ok, c.want, c.ok)
		}
	}
	if got, want := r.Names(), []string{"file", "postgres", "postgresql"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
}

func TestRegistry_RegisteringTwicePanics(t *testing.T) {
	r := New[int]("test: scheme")
	r.Register("file", 1)
	defer func() {
		if got, want := recover(), "test: scheme file registered twice"; got != want {
			t.Fatalf("panic %v, want %q", got, want)
		}
		if v, _ := r.Lookup("file"); v != 1 {
			t.Fatalf("the first registration was replaced by %d", v)
		}
	}()
	r.Register("file", 2)
}
