package authres

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/emersion/go-msgauth/dkim"
)

// maxBuffered bounds the message bytes held between Write and the DKIM
// verifier, which reads nothing while it looks up the keys (go-msgauth
// fetches a key before hashing the body).
const maxBuffered = 1 << 20

var errAborted = errors.New("authres: aborted")

// dkimRun verifies the DKIM signatures of one message while it is written:
// Write queues copies of the bytes, a feeder goroutine writes them into an
// io.Pipe, and go-msgauth's VerifyWithOptions reads the other end, hashing
// the body once per signature in parallel.
type dkimRun struct {
	mu     sync.Mutex
	cond   *sync.Cond
	chunks [][]byte
	size   int
	closed bool // no more chunks will come (finish or abort)

	pw   *io.PipeWriter
	done chan struct{} // closed when the verifier and the feeder have ended

	verifs []*dkim.Verification
	err    error
}

func (v *Verifier) startDKIM(parent context.Context) *dkimRun {
	d := &dkimRun{done: make(chan struct{})}
	d.cond = sync.NewCond(&d.mu)
	pr, pw := io.Pipe()
	d.pw = pw
	ctx, cancel := context.WithTimeout(parent, v.timeout)
	opts := &dkim.VerifyOptions{
		LookupTXT:        netResolver{res: v.res}.txtFunc(ctx),
		MaxVerifications: v.maxSigs,
	}
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		d.feed()
	}()
	go func() {
		defer close(d.done)
		defer cancel()
		d.verifs, d.err = dkim.VerifyWithOptions(pr, opts)
		// The verifier may stop early (no signatures, a bad header):
		// drain the pipe so that the feeder never blocks.
		_, _ = io.Copy(io.Discard, pr)
		<-fed
	}()
	return d
}

// write queues a copy of p, waiting while maxBuffered bytes are queued.
func (d *dkimRun) write(p []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.size >= maxBuffered && !d.closed {
		d.cond.Wait()
	}
	if d.closed {
		return
	}
	d.chunks = append(d.chunks, append([]byte(nil), p...))
	d.size += len(p)
	d.cond.Broadcast()
}

// feed writes the queued chunks into the pipe until the queue is closed.
func (d *dkimRun) feed() {
	for {
		d.mu.Lock()
		for len(d.chunks) == 0 && !d.closed {
			d.cond.Wait()
		}
		if len(d.chunks) == 0 {
			d.mu.Unlock()
			_ = d.pw.Close()
			return
		}
		chunk := d.chunks[0]
		d.chunks[0] = nil
		d.chunks = d.chunks[1:]
		d.size -= len(chunk)
		d.cond.Broadcast()
		d.mu.Unlock()
		if _, err := d.pw.Write(chunk); err != nil {
			d.close(true)
			return
		}
	}
}

// close ends the queue; drop discards what is still queued.
func (d *dkimRun) close(drop bool) {
	d.mu.Lock()
	d.closed = true
	if drop {
		d.chunks, d.size = nil, 0
	}
	d.cond.Broadcast()
	d.mu.Unlock()
}

func (d *dkimRun) abort() {
	d.close(true)
	_ = d.pw.CloseWithError(errAborted)
	<-d.done
}

// finish waits for the verifier and pairs its verifications with the
// signatures' tags (both in header order). Signatures beyond max get
// "policy": they were not checked.
func (d *dkimRun) finish(tags []sigTags, max int) []DKIMResult {
	d.close(false)
	<-d.done
	var out []DKIMResult
	for i, t := range tags {
		r := DKIMResult{Domain: t.domain, Selector: t.selector, Algorithm: t.algorithm}
		switch {
		case i >= max:
			r.Result, r.Reason = "policy", "too many signatures, not checked"
		case i >= len(d.verifs):
			// The verifier failed as a whole (an unreadable header
			// section): nothing was checked.
			r.Result, r.Reason = "permerror", "message not verifiable"
			if d.err != nil {
				r.Reason = d.err.Error()
			}
		case d.err != nil && !errors.Is(d.err, dkim.ErrTooManySignatures):
			// go-msgauth stopped on an unexpected error (reading the
			// message) and cleared the signatures' own errors.
			r.Result, r.Reason = "temperror", d.err.Error()
		default:
			r.Result, r.Reason = dkimResult(d.verifs[i].Err)
			if d.verifs[i].Domain != "" {
				r.Domain = lowerDomain(d.verifs[i].Domain)
			}
		}
		out = append(out, r)
	}
	return out
}

// dkimResult maps a go-msgauth verification error onto the RFC 8601
// §2.7.1 result names: a missing or unusable key and a malformed signature
// are permerror (RFC 6376 §6.1.2-§6.1.3 PERMFAIL), a DNS failure
// temperror, a hash or signature that does not verify fail.
func dkimResult(err error) (string, string) {
	switch {
	case err == nil:
		return "pass", ""
	case dkim.IsTempFail(err):
		return "temperror", err.Error()
	case dkim.IsPermFail(err):
		return "permerror", err.Error()
	default:
		return "fail", err.Error()
	}
}
