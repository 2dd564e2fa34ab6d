package cli

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// health tracks the long-running parts of serve (the SMTP listeners, the
// queue runner) for /healthz: healthy while every one of them runs.
type health struct {
	mu      sync.Mutex
	running map[string]bool
}

// newHealth expects the named components; each is down until run starts it.
func newHealth(components ...string) *health {
	h := &health{running: make(map[string]bool)}
	for _, c := range components {
		h.running[c] = false
	}
	return h
}

// run marks name up while fn runs and returns fn's result.
func (h *health) run(name string, fn func() error) error {
	h.set(name, true)
	defer h.set(name, false)
	return fn()
}

func (h *health) set(name string, up bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.running[name] = up
}

// check returns nil when every component runs, else which ones do not.
func (h *health) check() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var down []string
	for name, up := range h.running {
		if !up {
			down = append(down, name)
		}
	}
	if len(down) == 0 {
		return nil
	}
	slices.Sort(down)
	return fmt.Errorf("not running: %s", strings.Join(down, ", "))
}
