package queue

// prefix.go: the index prefix of an env file. Its first fields (v, due,
// held, warned, arrival, size, counts, id) are read by a small strict
// scanner at Open, so that indexing a deep queue reads 512 bytes of each
// file instead of decoding every envelope (index.go keeps what they say).

import (
	"bytes"
	"errors"
	"io"
	"os"
	"time"
)

// prefixMax bounds how much of an env file readPrefix reads.
const prefixMax = 512

// prefix is what the first fields of an env file say (envelope's order).
type prefix struct {
	due       time.Time
	held      bool
	warned    bool
	arrival   time.Time
	size      int64
	counts    [numStates]int
	hasCounts bool // counts was there (files of a few hours in issue #17's work lack it)
	id        string
}

// readPrefix reads the prefix of env/<id>.json.
func (q *Queue) readPrefix(id string) (prefix, error) {
	f, err := q.dir.fs.OpenFile(q.dir.env(id), os.O_RDONLY, 0)
	if err != nil {
		return prefix{}, err
	}
	defer f.Close()
	var buf [prefixMax]byte
	n, err := io.ReadFull(f, buf[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return prefix{}, err
	}
	return parsePrefix(buf[:n])
}

// errNoPrefix is parsePrefix's answer for a file that does not start
// with the fields it needs (an older file, or a damaged one).
var errNoPrefix = errors.New("no index prefix")

// parsePrefix decodes the leading fields of an env file: "v" (1), "due",
// "held", "warned", "arrival", "size", "counts" and "id", in that order
// with the optional ones absent, up to "id". Anything else before "id" is errNoPrefix, and
// so is anything marshal does not write there (a string with an escape,
// a number that is not an integer): the file is then decoded whole, so
// the reader can be this strict and simple (and ten times faster than
// encoding/json).
func parsePrefix(b []byte) (prefix, error) {
	var p prefix
	s := scanner{b: b}
	if !s.punct('{') {
		return p, errNoPrefix
	}
	order := [...]string{"v", "due", "held", "warned", "arrival", "size", "counts", "id"}
	for seen := 0; ; {
		key, ok := s.str()
		if !ok || !s.punct(':') {
			return prefix{}, errNoPrefix
		}
		i := seen
		for i < len(order) && order[i] != key {
			i++
		}
		if i == len(order) || (i == 0) != (seen == 0) {
			return prefix{}, errNoPrefix // unknown, out of order, or "v" not first
		}
		seen = i + 1
		switch key {
		case "v":
			ok = s.word("1")
		case "due":
			p.due, ok = s.time()
		case "held":
			p.held, ok = s.bool()
		case "warned":
			p.warned, ok = s.bool()
		case "arrival":
			p.arrival, ok = s.time()
		case "size":
			p.size, ok = s.int()
		case "counts":
			p.hasCounts = true
			if !s.punct('[') {
				return prefix{}, errNoPrefix
			}
			for i := range p.counts {
				if i > 0 && !s.punct(',') {
					ok = false
					break
				}
				var n int64
				n, ok = s.int()
				p.counts[i] = int(n)
				if !ok {
					break
				}
			}
			ok = ok && s.punct(']')
		case "id":
			p.id, ok = s.str()
			if ok {
				return p, nil
			}
		}
		if !ok || !s.punct(',') {
			return prefix{}, errNoPrefix
		}
	}
}

// scanner reads the JSON tokens parsePrefix needs, skipping white space
// before each.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

// punct consumes the byte c.
func (s *scanner) punct(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// word consumes the literal w, which must end there (not "10" for "1").
func (s *scanner) word(w string) bool {
	s.ws()
	if !bytes.HasPrefix(s.b[s.i:], []byte(w)) {
		return false
	}
	j := s.i + len(w)
	if j < len(s.b) && (s.b[j] >= '0' && s.b[j] <= '9' || s.b[j] >= 'a' && s.b[j] <= 'z' || s.b[j] == '.') {
		return false
	}
	s.i = j
	return true
}

func (s *scanner) bool() (bool, bool) {
	switch {
	case s.word("true"):
		return true, true
	case s.word("false"):
		return false, true
	}
	return false, false
}

// str consumes a string without escapes or control characters.
func (s *scanner) str() (string, bool) {
	if !s.punct('"') {
		return "", false
	}
	for j := s.i; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			v := string(s.b[s.i:j])
			s.i = j + 1
			return v, true
		case c == '\\' || c < 0x20:
			return "", false
		}
	}
	return "", false
}

// int consumes a non-negative integer of at most 18 digits.
func (s *scanner) int() (int64, bool) {
	s.ws()
	j := s.i
	var n int64
	for j < len(s.b) && s.b[j] >= '0' && s.b[j] <= '9' && j-s.i < 18 {
		n = n*10 + int64(s.b[j]-'0')
		j++
	}
	if j == s.i || (j < len(s.b) && (s.b[j] >= '0' && s.b[j] <= '9' || s.b[j] == '.' || s.b[j] == 'e' || s.b[j] == 'E')) {
		return 0, false
	}
	if s.b[s.i] == '0' && j-s.i > 1 {
		return 0, false // JSON has no leading zeros
	}
	s.i = j
	return n, true
}

// time consumes a string holding an RFC 3339 time, as time.Time marshals.
func (s *scanner) time() (time.Time, bool) {
	v, ok := s.str()
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	return t, err == nil
}

// indexDue is when a message with prefix p is first looked at after Open:
// its earliest next attempt, or its delay warning's time when that may be
// earlier (a guess on the early side: loading finds the truth); never
// when it is held.
func (q *Queue) indexDue(p prefix) int64 {
	if p.held {
		return never
	}
	due := nanos(p.due)
	if q.opts.DelayWarning > 0 && !p.warned {
		due = min(due, nanos(p.arrival.Add(q.opts.DelayWarning)))
	}
	return due
}
