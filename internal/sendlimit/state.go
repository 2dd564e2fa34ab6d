package sendlimit

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"smtpkit/internal/atomicfile"
)

// state.go: counts.json, the counts of every account surviving a restart.
// It holds, per account, the Unix seconds of the messages counted and of
// each recipient hash (hexadecimal) — nothing older than a day, since
// Flush writes only what is still inside a window.

const savedVersion = 1

type savedFile struct {
	Version  int                     `json:"v"`
	Accounts map[string]savedAccount `json:"accounts"`
}

type savedAccount struct {
	Sent  []int64          `json:"sent,omitempty"`
	Rcpts map[string]int64 `json:"rcpts,omitempty"` // hash in hex → last counted
}

// Flush writes the counts if they changed since the last write (a no-op
// without Options.Dir).
func (s *Store) Flush() error {
	if s.path == "" {
		return nil
	}
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	gen := s.gen.Load()
	if gen == s.saved && s.full == 0 {
		s.mu.Unlock()
		return nil
	}
	s.prune(s.now().Unix())
	f := savedFile{Version: savedVersion, Accounts: make(map[string]savedAccount, len(s.byName))}
	for name, a := range s.byName {
		a.mu.Lock()
		sa := savedAccount{Sent: slices.Clone(a.sent)}
		if len(a.rcpts) > 0 {
			sa.Rcpts = make(map[string]int64, len(a.rcpts))
			for h, t := range a.rcpts {
				sa.Rcpts[strconv.FormatUint(h, 16)] = t
			}
		}
		a.mu.Unlock()
		f.Accounts[name] = sa
	}
	full := s.full
	s.full = 0
	s.mu.Unlock()
	if full > 0 {
		s.log.Warn("account limits: accounts not counted, too many followed at once", "times", full, "max_accounts", MaxAccounts)
	}
	data, err := json.Marshal(f) // map keys sorted: the same counts, the same file
	if err != nil {
		return err
	}
	if err := atomicfile.Write(s.path, data, 0o600); err != nil {
		return fmt.Errorf("account limits: %w", err)
	}
	s.saved = gen
	return nil
}

// Close stops the periodic writes and writes the counts a last time.
func (s *Store) Close() error {
	if s.flusher == nil {
		return nil
	}
	return s.flusher.Close()
}

// parse loads counts.json; statefile.Load moves a file it refuses aside.
func (s *Store) parse(data []byte) error {
	var f savedFile
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	if f.Version != savedVersion {
		return fmt.Errorf("version %d, want %d", f.Version, savedVersion)
	}
	if len(f.Accounts) > MaxAccounts {
		return fmt.Errorf("%d accounts, more than %d", len(f.Accounts), MaxAccounts)
	}
	byName := make(map[string]*account, len(f.Accounts))
	for name, sa := range f.Accounts {
		a := &account{sent: sa.Sent, rcpts: make(map[uint64]int64, len(sa.Rcpts))}
		if !slices.IsSorted(a.sent) {
			return fmt.Errorf("account %q: message times out of order", name)
		}
		for k, t := range sa.Rcpts {
			h, err := strconv.ParseUint(k, 16, 64)
			if err != nil {
				return fmt.Errorf("account %q: recipient key %q: %v", name, k, err)
			}
			a.rcpts[h] = t
		}
		byName[name] = a
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byName = byName
	s.prune(s.now().Unix())
	return nil
}

func (s *Store) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byName = map[string]*account{}
}
