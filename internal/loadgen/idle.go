package loadgen

import (
	"context"
	"errors"
	"sync"
	"time"

	"smtpkit/internal/client"
)

// IdleReport is the outcome of Idle.
type IdleReport struct {
	Requested int               `json:"requested"`
	Held      int               `json:"held"` // connections open after EHLO when the hold began
	Failed    int               `json:"failed"`
	Errors    map[string]int    `json:"errors"`
	Samples   map[string]string `json:"error_samples"`
	Open      time.Duration     `json:"open_ns"` // time to open them all
}

// Idle opens n sessions (Concurrency of them being opened at a time), says
// EHLO on each (and STARTTLS when asked), calls held with the number that
// succeeded, keeps them open for hold or until ctx is done, and then quits
// them all. It measures what an idle client costs the server.
func Idle(ctx context.Context, opts Options, n int, hold time.Duration, held func(IdleReport)) (IdleReport, error) {
	rep := IdleReport{Requested: n, Errors: map[string]int{}, Samples: map[string]string{}}
	if opts.Addr == "" || n <= 0 {
		return rep, errors.New("loadgen: idle needs an address and a positive count")
	}
	if usesTLS(opts.TLS) && opts.TLSConfig == nil {
		return rep, errors.New("loadgen: TLS needs a tls.Config")
	}
	opts.Concurrency = max(opts.Concurrency, 1)
	opts.AuthUser = ""
	w := &worker{run: &runState{opts: &opts}, errs: rep.Errors, samples: rep.Samples}

	start := time.Now()
	conns := make([]*client.Conn, n)
	var mu sync.Mutex
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(opts.Concurrency, n) {
		wg.Go(func() {
			for i := range next {
				c, err := w.open(ctx)
				mu.Lock()
				if err != nil {
					w.note(err)
				} else {
					conns[i] = c
				}
				mu.Unlock()
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	rep.Open = time.Since(start)
	for _, c := range conns {
		if c != nil {
			rep.Held++
		}
	}
	rep.Failed = n - rep.Held
	if held != nil {
		held(rep)
	}
	t := time.NewTimer(hold)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	}
	closeAll(conns, opts.Concurrency)
	return rep, nil
}

// closeAll sends QUIT on every connection, par at a time.
func closeAll(conns []*client.Conn, par int) {
	next := make(chan *client.Conn)
	var wg sync.WaitGroup
	for range par {
		wg.Go(func() {
			for c := range next {
				c.Quit()
			}
		})
	}
	for _, c := range conns {
		if c != nil {
			next <- c
		}
	}
	close(next)
	wg.Wait()
}
