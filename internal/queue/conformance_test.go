package queue_test

import (
	"path/filepath"
	"testing"

	"smtpkit/internal/queue"
	"smtpkit/internal/queue/queuetest"
)

// TestConformance runs the back-end conformance suite against the files.
func TestConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) queuetest.Opener {
		dir := filepath.Join(t.TempDir(), "queue")
		return func(t *testing.T, o queuetest.Options) queue.Backend {
			q, err := queue.Open(queue.Options{Dir: dir, Courier: o.Courier, Local: o.Local, Now: o.Now,
				RetryMin: o.RetryMin, RetryMax: o.RetryMax, MaxAge: o.MaxAge, DelayWarning: o.DelayWarning,
				Hostname: o.Hostname})
			if err != nil {
				t.Fatal(err)
			}
			return queue.LocalBackend(q)
		}
	})
}
