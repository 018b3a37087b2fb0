// Package registry is the name-to-backend table that packages fill from init (watermark and budget stores by URL scheme, key backends, sealers).
package registry

import (
	"slices"
	"sync"
)

// Registry maps names to values of type T; it is safe for concurrent use.
// Make one with New.
type Registry[T any] struct {
	what string // names an entry in the panic of a duplicate
	mu   sync.RWMutex
	m    map[string]T
}

// New returns an empty registry. what names an entry in the panic of a
// duplicate, which reads "<what> <name> registered twice" (what is, for
// example, "watermark: scheme").
func New[T any](what string) *Registry[T] {
	return &Registry[T]{what: what, m: map[string]T{}}
}

// Register adds v under name. Registering a name twice panics: two backends
// claiming one name is a build mistake, not something to settle at run time.
func (r *Registry[T]) Register(name string, v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.m[name]; dup {
		panic(r.what + " " + name + " registered twice")
	}
	r.m[name] = v
}

// Lookup returns the value registered under name.
func (r *Registry[T]) Lookup(name string) (T, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.m[name]
	return v, ok
}

// Names lists the registered names, sorted.
func (r *Registry[T]) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.m))
	for name := range r.m {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}
