package server

import (
	"bytes"
	"strings"
	"testing"
)

// textChecker takes clean lines whole; refTextCheck is the same rules one
// octet at a time (RFC 5321 §2.3.8, §4.5.3.1.6; RFC 5322 §2.1), which it
// must match in verdict, error and in what it passes on, whatever the
// input and its chunking.
func refTextCheck(in []byte, maxLine int, headerOnly bool) error {
	c := &textChecker{maxLine: maxLine, headerOnly: headerOnly}
	for _, b := range in {
		if c.done {
			return nil
		}
		if err := c.octet(b); err != nil {
			return err
		}
	}
	if c.cr && !c.done {
		return errBareCRAtEnd
	}
	return nil
}

// errBareCRAtEnd stands for Close's bare-CR error in refTextCheck.
var errBareCRAtEnd = bareCRAtEnd{}

type bareCRAtEnd struct{}

func (bareCRAtEnd) Error() string { return "bare CR at the end" }

func runTextCheck(t testing.TB, in []byte, maxLine int, headerOnly bool, cuts []byte) (error, []byte) {
	var out bytes.Buffer
	c := &textChecker{next: nopCloser{&out}, maxLine: maxLine, headerOnly: headerOnly}
	for i := 0; len(in) > 0; i++ {
		n := len(in)
		if len(cuts) > 0 {
			n = min(n, int(cuts[i%len(cuts)])+1)
		}
		if _, err := c.Write(in[:n]); err != nil {
			return err, out.Bytes()
		}
		in = in[n:]
	}
	if err := c.Close(); err != nil {
		return errBareCRAtEnd, out.Bytes()
	}
	return nil, out.Bytes()
}

func checkTextCheckMatches(t testing.TB, in []byte, maxLine int, headerOnly bool, cuts []byte) {
	want := refTextCheck(in, maxLine, headerOnly)
	got, out := runTextCheck(t, in, maxLine, headerOnly, cuts)
	if got != want {
		t.Errorf("textChecker(%q, max %d, headerOnly %v, cuts %v) = %v, want %v", in, maxLine, headerOnly, cuts, got, want)
	}
	if got == nil && !bytes.Equal(out, in) {
		t.Errorf("textChecker(%q) passed on %q", in, out)
	}
}

func TestTextCheckerMatchesOctetRules(t *testing.T) {
	long := strings.Repeat("x", 996)
	for _, in := range []string{
		"a\r\nb\r\n", "a\nb", "a\rb\r\n", "a\r", "a\r\n\x00", "\r\n", "\r\r\n", "\n",
		"Subject: x\r\n\r\n\x00\rbinary\n", "Subject: x\r\n\r", "A: b\r\n\x00\r\n\r\n",
		long + "\r\n", long + "x\r\n", long + "xx\r\n", long + "x\r", long + "xx",
		strings.Repeat("line of text\r\n", 10000),
	} {
		for _, cuts := range [][]byte{nil, {0}, {2}, {1, 7, 0}, {255}} {
			for _, headerOnly := range []bool{false, true} {
				checkTextCheckMatches(t, []byte(in), 1000, headerOnly, cuts)
			}
		}
	}
}

func FuzzTextCheckerMatchesOctetRules(f *testing.F) {
	for _, s := range []string{"a\r\nb\r\n", "a\nb", "x\r\n\r\n\x00\n", "abcdef\r\n", "\r\r"} {
		f.Add([]byte(s), uint8(4), false, []byte{1})
	}
	f.Fuzz(func(t *testing.T, in []byte, maxLine uint8, headerOnly bool, cuts []byte) {
		checkTextCheckMatches(t, in, int(maxLine%32)+3, headerOnly, cuts)
	})
}
