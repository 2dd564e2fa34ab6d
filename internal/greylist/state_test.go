package greylist

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestStateSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	l := open(t, dir, c, nil)
	l.Check(trip(0)) // pending
	l.Check(trip(1))
	c.add(10 * time.Minute)
	l.Check(trip(1)) // passed
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = open(t, dir, c, nil)
	if n := l.Len(); n != 2 {
		t.Fatalf("reopened with %d entries, want 2", n)
	}
	if d := l.Check(trip(0)); !d.Pass || d.Reason != Retried {
		t.Errorf("pending triplet after reopen: %+v", d)
	}
	if d := l.Check(trip(1)); !d.Pass || d.Reason != Known {
		t.Errorf("passed triplet after reopen: %+v", d)
	}
}

func TestReopenDropsExpiredAndBounds(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	l := open(t, dir, c, nil)
	for i := range 20 {
		c.add(time.Second)
		l.Check(trip(i))
	}
	l.Close()

	l = open(t, dir, c, func(o *Options) { o.MaxEntries = 5 })
	if n := l.Len(); n != 5 {
		t.Fatalf("%d entries, want 5", n)
	}
	c.add(10 * time.Minute)
	if d := l.Check(trip(19)); !d.Pass {
		t.Errorf("newest kept entry: %+v", d)
	}
	l.Close()

	c.add(49 * time.Hour)
	l = open(t, dir, c, nil)
	if n := l.Len(); n != 1 { // only the passed one
		t.Fatalf("after the retry window: %d entries, want 1", n)
	}
}

func TestUnreadableStateMovedAside(t *testing.T) {
	for _, tc := range []struct{ name, data string }{
		{"not json", "{"},
		{"version", `{"version":2,"entries":[]}`},
		{"network not a /24", `{"version":1,"entries":[{"net":"192.0.2.1/32","sender":"a","rcpt":"b","first":1}]}`},
		{"bad network", `{"version":1,"entries":[{"net":"x","sender":"a","rcpt":"b","first":1}]}`},
		{"empty sender", `{"version":1,"entries":[{"net":"192.0.2.0/24","sender":"","rcpt":"b","first":1}]}`},
		{"no time", `{"version":1,"entries":[{"net":"192.0.2.0/24","sender":"a","rcpt":"b","first":0}]}`},
		{"duplicate", `{"version":1,"entries":[{"net":"192.0.2.0/24","sender":"a","rcpt":"b","first":1},{"net":"192.0.2.0/24","sender":"a","rcpt":"b","first":2}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, stateFile), []byte(tc.data), 0o600); err != nil {
				t.Fatal(err)
			}
			l := open(t, dir, newClock(), nil)
			if n := l.Len(); n != 0 {
				t.Errorf("%d entries from a bad file", n)
			}
			if _, err := os.Stat(filepath.Join(dir, stateFile+".bad")); err != nil {
				t.Errorf("not moved aside: %v", err)
			}
		})
	}
}

func TestFlushOnlyWhenChanged(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	l := open(t, dir, c, nil)
	path := filepath.Join(dir, stateFile)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("an unchanged empty list was written: %v", err)
	}
	l.Check(trip(0))
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	os.Remove(path)
	l.Check(trip(0)) // too early: no change
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("written without a change: %v", err)
	}
}
