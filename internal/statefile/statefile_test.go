package statefile

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		name      string
		content   *string // nil: no file
		parseErr  error
		wantReset bool
		wantBad   bool
	}{
		{"no file", nil, nil, false, false},
		{"good file", ptr("ok"), nil, false, false},
		{"unreadable content: moved aside", ptr("junk"), errors.New("bad"), true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			if tt.content != nil {
				os.WriteFile(path, []byte(*tt.content), 0o600)
			}
			var got []byte
			reset := false
			err := Load(path, func(b []byte) error { got = b; return tt.parseErr }, func() { reset = true }, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if tt.content != nil && string(got) != *tt.content {
				t.Errorf("parse got %q", got)
			}
			if reset != tt.wantReset {
				t.Errorf("reset %v, want %v", reset, tt.wantReset)
			}
			_, errBad := os.Stat(path + ".bad")
			if (errBad == nil) != tt.wantBad {
				t.Errorf(".bad exists %v, want %v", errBad == nil, tt.wantBad)
			}
		})
	}
}

func ptr(s string) *string { return &s }

// TestFlusher: ticks call flush, errors go to onError, Close flushes once
// more and only once.
func TestFlusher(t *testing.T) {
	var calls, errs atomic.Int32
	f := Start(5*time.Millisecond, func() error {
		if calls.Add(1) == 1 {
			return errors.New("disk full")
		}
		return nil
	}, func(error) { errs.Add(1) })
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	n := calls.Load()
	if n < 3 || errs.Load() != 1 {
		t.Fatalf("calls %d, errors %d", n, errs.Load())
	}
	if err := f.Close(); err != nil || calls.Load() != n {
		t.Errorf("second Close flushed again: %d calls", calls.Load())
	}
}
