package mimeconv

import (
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

// bigMessage streams a multipart message with an n-octet binary part and
// an n-octet 8bit text part, without holding it.
func bigMessage(n int) io.Reader {
	head := "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
	mid := "\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
	bin := io.LimitReader(&patternReader{p: "\x00\xff\r\n\x80abc\n"}, int64(n))
	text := io.LimitReader(&patternReader{p: "Grüße aus Köln, eine Zeile Text.\r\n"}, int64(n))
	return io.MultiReader(strings.NewReader(head), bin, strings.NewReader(mid), text, strings.NewReader("\r\n--b--\r\n"))
}

// patternReader repeats p for ever.
type patternReader struct {
	p   string
	off int
}

func (r *patternReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = r.p[r.off]
		r.off = (r.off + 1) % len(r.p)
	}
	return len(b), nil
}

// TestBoundedMemory: converting a message of 2×32 MiB allocates a small
// fraction of its size in all (nothing but fixed buffers is held; the
// total counts garbage too, so it bounds the peak).
func TestBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB through the converter")
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := To7Bit(io.Discard, bigMessage(32<<20)); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("64 MiB converted with %d KiB allocated in all", alloc>>10)
	if alloc > 8<<20 {
		t.Errorf("%d MiB allocated converting 64 MiB", alloc>>20)
	}
}

func BenchmarkTo7Bit(b *testing.B) {
	const n = 8 << 20
	b.SetBytes(2 * n)
	for b.Loop() {
		if _, err := To7Bit(io.Discard, bigMessage(n)); err != nil {
			b.Fatal(err)
		}
	}
}

// TestHoldLimit: a part declared 7bit is held up to MaxHold to see whether
// it needs converting; 8-bit octets past that cannot be converted any
// more (its header is out) and fail, while 8-bit octets inside it convert.
func TestHoldLimit(t *testing.T) {
	head := "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n"
	line := strings.Repeat("a", 98) + "\r\n"
	long := strings.Repeat(line, MaxHold/len(line)+1)
	for _, tc := range []struct {
		name string
		body string
		err  error
	}{
		{"8-bit inside the hold", "é\r\n" + long, nil},
		{"8-bit past the hold", long + "é\r\n", ErrCannotConvert},
		{"7-bit past the hold", long + "e\r\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := To7Bit(io.Discard, strings.NewReader(head+tc.body))
			if tc.err == nil && err != nil || tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("err %v, want %v", err, tc.err)
			}
		})
	}
}
