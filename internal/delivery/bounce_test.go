package delivery

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"smtpkit/internal/local"
	"smtpkit/internal/queue"
	"smtpkit/internal/smtp"
)

// fakeStore is local delivery for example.com: team@ is an alias of
// alice and of carol@remote.example.
type fakeStore struct {
	stored []string // "id from box,box body"
	fail   error    // Deliver fails
}

func (*fakeStore) IsLocal(domain string) bool { return strings.EqualFold(domain, "example.com") }

func (*fakeStore) Resolve(rcpts []smtp.Address) (local.Destinations, error) {
	var d local.Destinations
	for _, r := range rcpts {
		switch strings.ToLower(r.String()) {
		case "alice@example.com":
			d.Mailboxes = append(d.Mailboxes, "alice@example.com")
		case "team@example.com":
			d.Mailboxes = append(d.Mailboxes, "alice@example.com")
			d.Forwarded = append(d.Forwarded, smtp.Address{Local: "carol", Domain: "remote.example"})
		default:
			return local.Destinations{}, local.ErrNoSuchUser
		}
	}
	return d, nil
}

func (s *fakeStore) Deliver(_ context.Context, id string, from smtp.Address, boxes []string, body io.Reader) error {
	if s.fail != nil {
		return s.fail
	}
	b, _ := io.ReadAll(body)
	s.stored = append(s.stored, id+" <"+from.String()+"> "+strings.Join(boxes, ",")+" "+string(b))
	return nil
}

type fakeEnqueuer struct{ to []string }

func (q *fakeEnqueuer) EnqueueBounce(_ context.Context, b queue.Bounce) error {
	q.to = append(q.to, b.To)
	return nil
}

// fakeSRS decodes SRS0=OK=TT=domain=local@mx.example.com; any other
// hash is forged.
type fakeSRS struct{}

func (fakeSRS) Mine(a smtp.Address) bool {
	return strings.EqualFold(a.Domain, "mx.example.com") && strings.HasPrefix(a.Local, "SRS0=")
}

func (fakeSRS) Reverse(a smtp.Address) (smtp.Address, error) {
	f := strings.SplitN(a.Local, "=", 5)
	if f[1] != "OK" {
		return smtp.Address{}, errors.New("forged")
	}
	return smtp.Address{Local: f[4], Domain: f[3]}, nil
}

func TestBounces(t *testing.T) {
	tests := []struct {
		name     string
		to       string
		fail     error
		stored   []string
		queued   []string
		wantCode int
	}{
		{"local sender: its mailbox, from <>", "alice@example.com", nil, []string{"bounce-Q1 <> alice@example.com DSN"}, nil, 0},
		{"local domain in any case", "alice@EXAMPLE.com", nil, []string{"bounce-Q1 <> alice@example.com DSN"}, nil, 0},
		{"remote sender: the queue", "dave@far.example", nil, nil, []string{"dave@far.example"}, 0},
		{"local alias: mailboxes here, members elsewhere queued", "team@example.com", nil,
			[]string{"bounce-Q1 <> alice@example.com DSN"}, []string{"carol@remote.example"}, 0},
		{"our SRS address: decoded to the remote sender", "SRS0=OK=AA=far.example=dave@mx.example.com", nil, nil, []string{"dave@far.example"}, 0},
		{"our SRS address: decoded to a local sender", "SRS0=OK=AA=example.com=alice@MX.example.com", nil, []string{"bounce-Q1 <> alice@example.com DSN"}, nil, 0},
		{"our SRS address that does not verify: as it is", "SRS0=BAD=AA=far.example=dave@mx.example.com", nil, nil, []string{"SRS0=BAD=AA=far.example=dave@mx.example.com"}, 0},
		{"SRS form elsewhere: as it is", "SRS0=OK=AA=x.example=dave@far.example", nil, nil, []string{"SRS0=OK=AA=x.example=dave@far.example"}, 0},
		{"local sender gone: an error, retried", "gone@example.com", nil, nil, nil, 550},
		{"mailbox full: an error, retried", "alice@example.com", smtp.Wrap(smtp.R(smtp.CodeInsufficientSpace, smtp.EnhSystemFull.Temp(), "full"), errors.New("ENOSPC")), nil, nil, 452},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, q := &fakeStore{fail: tt.fail}, &fakeEnqueuer{}
			b := &Bounces{Local: store, Queue: q, SRS: fakeSRS{}}
			err := b.Deliver(context.Background(), queue.Bounce{ID: "Q1", To: tt.to, Message: []byte("DSN")})
			var se *smtp.Error
			if got := 0; err != nil {
				if errors.As(err, &se) {
					got = se.Reply.Code
				}
				if got != tt.wantCode {
					t.Fatalf("Deliver: %v, want code %d", err, tt.wantCode)
				}
			} else if tt.wantCode != 0 {
				t.Fatalf("Deliver succeeded, want code %d", tt.wantCode)
			}
			if !slices.Equal(store.stored, tt.stored) || !slices.Equal(q.to, tt.queued) {
				t.Errorf("stored %q, queued %q; want %q, %q", store.stored, q.to, tt.stored, tt.queued)
			}
		})
	}
}

// TestBounceRecipients: Recipients addresses a DSN as Deliver does, for a
// queue that queues it itself (pgqueue).
func TestBounceRecipients(t *testing.T) {
	tests := []struct {
		name   string
		to     string
		boxes  []string
		remote []string
		fails  bool
	}{
		{"local sender: its mailbox", "alice@example.com", []string{"alice@example.com"}, nil, false},
		{"remote sender", "dave@far.example", nil, []string{"dave@far.example"}, false},
		{"local alias: mailboxes and members elsewhere", "team@example.com", []string{"alice@example.com"}, []string{"carol@remote.example"}, false},
		{"our SRS address: the original sender", "SRS0=OK=AA=far.example=dave@mx.example.com", nil, []string{"dave@far.example"}, false},
		{"our SRS address to a local sender", "SRS0=OK=AA=example.com=alice@mx.example.com", []string{"alice@example.com"}, nil, false},
		{"SRS that does not verify: as it is", "SRS0=BAD=AA=far.example=dave@mx.example.com", nil, []string{"SRS0=BAD=AA=far.example=dave@mx.example.com"}, false},
		{"local sender gone", "gone@example.com", nil, nil, true},
		{"not an address", "no at sign", nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &Bounces{Local: &fakeStore{}, Queue: &fakeEnqueuer{}, SRS: fakeSRS{}}
			boxes, remote, err := b.Recipients(tt.to)
			if (err != nil) != tt.fails {
				t.Fatalf("Recipients(%q): %v", tt.to, err)
			}
			var rs []string
			for _, r := range remote {
				rs = append(rs, r.String())
			}
			if !slices.Equal(boxes, tt.boxes) || !slices.Equal(rs, tt.remote) {
				t.Errorf("mailboxes %q, remote %q; want %q, %q", boxes, rs, tt.boxes, tt.remote)
			}
		})
	}
}
