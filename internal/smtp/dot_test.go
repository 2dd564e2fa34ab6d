package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// readerKinds feed the DotReader in different ways, so that CRLF, ".\r\n"
// and CR LF pairs get split across reads and buffer fills.
var readerKinds = []struct {
	name  string
	wrap  func(io.Reader) *bufio.Reader
	chunk int // size of the caller's Read buffer
}{
	{"whole", func(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }, 32 << 10},
	{"onebyte", func(r io.Reader) *bufio.Reader { return bufio.NewReader(iotest.OneByteReader(r)) }, 32 << 10},
	{"half-smallbuf", func(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(iotest.HalfReader(r), 16) }, 5},
	{"onebyte-p1", func(r io.Reader) *bufio.Reader { return bufio.NewReader(iotest.OneByteReader(r)) }, 1},
	{"whole-p3", func(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }, 3},
	{"dataerr", func(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(iotest.DataErrReader(r), 16) }, 7},
}

// readDot reads d to the end with a buffer of chunk octets.
func readDot(t *testing.T, d *DotReader, chunk int) ([]byte, error) {
	t.Helper()
	var out []byte
	buf := make([]byte, chunk)
	for i := 0; ; i++ {
		if i > 1<<22 {
			t.Fatal("DotReader does not end")
		}
		n, err := d.Read(buf)
		if n < 0 || n > len(buf) {
			t.Fatalf("Read returned n=%d", n)
		}
		out = append(out, buf[:n]...)
		if err != nil {
			return out, err
		}
	}
}

type dotCase struct {
	name    string
	in      string // everything the client sends after the 354 reply
	want    string // message text, checked when err is nil
	err     error  // nil means io.EOF
	rest    string // what must be left in the bufio.Reader
	maxSize int64
	maxLine int
}

func runDotCase(t *testing.T, tt dotCase) {
	for _, k := range readerKinds {
		t.Run(k.name, func(t *testing.T) {
			br := k.wrap(strings.NewReader(tt.in))
			d := NewDotReader(br, tt.maxSize, tt.maxLine)
			got, err := readDot(t, d, k.chunk)
			want := tt.err
			if want == nil {
				want = io.EOF
			}
			if !errors.Is(err, want) {
				t.Fatalf("err = %v, want %v (data %q)", err, want, got)
			}
			if tt.err == nil && string(got) != tt.want {
				t.Errorf("data = %q, want %q", got, tt.want)
			}
			if tt.err == nil && d.Size() != int64(len(tt.want)) {
				t.Errorf("Size() = %d, want %d", d.Size(), len(tt.want))
			}
			if n, err2 := d.Read(make([]byte, 10)); n != 0 || !errors.Is(err2, want) {
				t.Errorf("Read after the end = %d, %v; want 0, %v", n, err2, want)
			}
			rest, _ := io.ReadAll(br)
			if errors.Is(want, io.ErrUnexpectedEOF) {
				return
			}
			if string(rest) != tt.rest {
				t.Errorf("left unread %q, want %q", rest, tt.rest)
			}
		})
	}
}

func TestDotReader(t *testing.T) {
	line998 := strings.Repeat("x", 998)
	tests := []dotCase{
		{name: "simple", in: "Subject: hi\r\n\r\nHello\r\n.\r\nQUIT\r\n", want: "Subject: hi\r\n\r\nHello\r\n", rest: "QUIT\r\n"},
		{name: "empty message", in: ".\r\nQUIT\r\n", want: "", rest: "QUIT\r\n"},
		{name: "one empty line", in: "\r\n.\r\n", want: "\r\n"},
		{name: "stuffed dot line", in: "..\r\n.\r\n", want: ".\r\n"},
		{name: "stuffed text", in: "a\r\n..foo\r\n...\r\n.\r\n", want: "a\r\n.foo\r\n..\r\n"},
		{name: "unstuffed leading dot is removed", in: ".foo\r\n.\r\n", want: "foo\r\n"},
		{name: "dot inside line", in: "a.\r\n a\r\n .\r\n.\r\n", want: "a.\r\n a\r\n .\r\n"},
		{name: "pipelined commands stay", in: "x\r\n.\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n", want: "x\r\n", rest: "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"},
		{name: "dot with trailing space is data", in: ". \r\n.\r\n", want: " \r\n"},
		{name: "8bit passes", in: "caf\xc3\xa9\r\n.\r\n", want: "caf\xc3\xa9\r\n"},
		{name: "NUL in a line", in: "caf\xc3\xa9\x00\r\n.\r\nQUIT\r\n", err: ErrNUL, rest: "QUIT\r\n"},
		{name: "NUL line", in: "a\r\n\x00\r\n.\r\n", err: ErrNUL},
		{name: "NUL at the start", in: "\x00.\r\n.\r\n", err: ErrNUL},
		{name: "NUL after a stuffed dot", in: ".\x00\r\n.\r\n", err: ErrNUL},
		{name: "NUL before CRLF dot", in: "a\x00\r\n.\r\n", err: ErrNUL},
		{name: "NUL then bare LF, first wins", in: "\x00\r\na\n\r\n.\r\n", err: ErrNUL},
		{name: "NUL keeps draining", in: "\x00" + strings.Repeat("0123456789\r\n", 1000) + ".\r\nQUIT\r\n", err: ErrNUL, rest: "QUIT\r\n"},
		{name: "1000 octet line", in: line998 + "\r\n.\r\n", want: line998 + "\r\n"},
		{name: "1000 octet stuffed line", in: "." + line998[1:] + "\r\n.\r\n", want: line998[1:] + "\r\n"},
		{name: "1001 octet line", in: line998 + "x\r\nok\r\n.\r\nNOOP\r\n", err: ErrLineTooLong, rest: "NOOP\r\n"},
		{name: "1001 octet line, CR last in line", in: line998 + "x\r\n.\r\n", err: ErrLineTooLong},
		{name: "line limit parameter", in: "12345678\r\n.\r\n", maxLine: 9, err: ErrLineTooLong},
		{name: "line limit parameter exact", in: "1234567\r\n.\r\n", maxLine: 9, want: "1234567\r\n"},
		{name: "size exact", in: "12345678\r\n.\r\n", maxSize: 10, want: "12345678\r\n"},
		{name: "size exact with stuffing", in: "..345678\r\n.\r\n", maxSize: 10, want: ".345678\r\n"},
		{name: "too large", in: "123456789\r\n.\r\nRSET\r\n", maxSize: 10, err: ErrTooLarge, rest: "RSET\r\n"},
		{name: "too large keeps draining", in: strings.Repeat("0123456789\r\n", 1000) + ".\r\nQUIT\r\n", maxSize: 100, err: ErrTooLarge, rest: "QUIT\r\n"},
		{name: "EOF at once", in: "", err: io.ErrUnexpectedEOF},
		{name: "EOF before terminator", in: "a\r\n", err: io.ErrUnexpectedEOF},
		{name: "EOF after dot", in: "a\r\n.", err: io.ErrUnexpectedEOF},
		{name: "EOF after dot CR", in: "a\r\n.\r", err: io.ErrUnexpectedEOF},
		{name: "EOF mid line", in: "a\r\nb", err: io.ErrUnexpectedEOF},
		{name: "EOF after bare LF", in: "a\n.\n", err: io.ErrUnexpectedEOF},
		{name: "bare CR then CRLF", in: "a\r\r\n.\r\nQUIT\r\n", err: ErrBareCR, rest: "QUIT\r\n"},
		{name: "bare CR at end of message", in: "a\r\r\n.\r\n", err: ErrBareCR},
		{name: "bare CR then dot", in: "a\r.\r\n.\r\n", err: ErrBareCR},
		{name: "bare LF at start", in: "\n.\r\n.\r\n", err: ErrBareLF},
		{name: "LF CR", in: "a\n\r\n.\r\n", err: ErrBareLF},
		{name: "lone dot LF", in: ".\n.\r\n\r\n.\r\n", err: ErrBareLF},
		{name: "lone dot CR", in: ".\r.\r\n\r\n.\r\n", err: ErrBareCR},
		{name: "bare LF only lines", in: "a\nb\nc\n.\r\n.\r\n", err: ErrBareLF},
		{name: "first error wins", in: "a\nb\r" + line998 + "\r\n.\r\n", err: ErrBareLF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runDotCase(t, tt) })
	}
}

// TestDotReaderSmuggling replays the end-of-data variants of SMTP smuggling
// (CVE-2023-51764 Postfix, CVE-2023-51765 Sendmail, CVE-2023-51766 Exim):
// none may end the data, the smuggled commands stay inside it, and the
// real terminator is followed by the error, with the next command unread.
func TestDotReaderSmuggling(t *testing.T) {
	payloads := []struct {
		end string
		err error
	}{
		{"\n.\n", ErrBareLF},
		{"\n.\r\n", ErrBareLF},
		{"\r.\r", ErrBareCR},
		{"\r\n.\n", ErrBareLF},
		{"\r\n.\r", ErrBareCR},
		{"\r.\r\n", ErrBareCR},
		// The scanners' "null" cases: not an end here, but one for a next
		// hop that strips NUL, so they are refused too.
		{"\r\n\x00.\r\n", ErrNUL},
		{"\r\n.\x00\r\n", ErrNUL},
		{"\n\x00.\n", ErrBareLF},
	}
	for _, p := range payloads {
		smuggled := "MAIL FROM:<admin@bank.example>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nFrom: admin@bank.example\r\n\r\nPay now\r\n"
		in := "From: attacker@evil.example\r\n\r\nhello" + p.end + smuggled + ".\r\nQUIT\r\n"
		want := ""
		if p.err == nil {
			want = "From: attacker@evil.example\r\n\r\nhello" + p.end + smuggled
		}
		t.Run(strings.NewReplacer("\r", `\r`, "\n", `\n`, "\x00", `\0`).Replace(p.end), func(t *testing.T) {
			runDotCase(t, dotCase{in: in, want: want, err: p.err, rest: "QUIT\r\n"})
		})
	}
}

// errAfter returns data, then a non-EOF error such as a timeout.
type errAfter struct {
	data []byte
	err  error
}

func (r *errAfter) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestDotReaderReadError(t *testing.T) {
	timeout := errors.New("i/o timeout")
	d := NewDotReader(bufio.NewReader(&errAfter{data: []byte("abc\r\n"), err: timeout}), 0, 0)
	got, err := io.ReadAll(d)
	if !errors.Is(err, timeout) {
		t.Fatalf("err = %v, want the read error", err)
	}
	if string(got) != "abc\r\n" {
		t.Errorf("data = %q", got)
	}
}

// TestDotReaderNoReadAhead checks that the reader does not ask the
// connection for more than it needs: after the terminator it must return
// without another read, or a pipelining client would hang.
func TestDotReaderNoReadAhead(t *testing.T) {
	r := &errAfter{data: []byte("abc\r\n.\r\n"), err: errors.New("read past the end of data")}
	d := NewDotReader(bufio.NewReader(r), 0, 0)
	got, err := io.ReadAll(d)
	if err != nil || string(got) != "abc\r\n" {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
}

func TestDotReaderSize(t *testing.T) {
	d := NewDotReader(bufio.NewReader(strings.NewReader("..ab\r\ncd\r\n.\r\n")), 0, 0)
	buf := make([]byte, 3)
	n, err := d.Read(buf)
	if err != nil || d.Size() < int64(n) {
		t.Fatalf("Read = %d, %v; Size %d", n, err, d.Size())
	}
	if _, err := io.ReadAll(d); err != nil {
		t.Fatal(err)
	}
	if d.Size() != 9 { // ".ab\r\n" and "cd\r\n"
		t.Errorf("Size() = %d, want 9", d.Size())
	}
}

func makeMessage(size int) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.org\r\nTo: b@example.org\r\nSubject: benchmark\r\n\r\n")
	for i := 0; b.Len() < size; i++ {
		if i%10 == 0 {
			b.WriteString("..a stuffed line\r\n")
			continue
		}
		b.WriteString("The quick brown fox jumps over the lazy dog, again and again and again.\r\n")
	}
	b.WriteString(".\r\n")
	return b.Bytes()
}

func benchmarkDotReader(b *testing.B, size int) {
	msg := makeMessage(size)
	src := bytes.NewReader(msg)
	br := bufio.NewReader(src)
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(msg)
		br.Reset(src)
		d := NewDotReader(br, 0, 0)
		for {
			_, err := d.Read(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkDotReader1KB(b *testing.B)   { benchmarkDotReader(b, 1<<10) }
func BenchmarkDotReader100KB(b *testing.B) { benchmarkDotReader(b, 100<<10) }

// TestDotReaderReturnsWhatItHas checks that Read hands over complete
// lines without waiting for more input from a slow client.
func TestDotReaderReturnsWhatItHas(t *testing.T) {
	for _, first := range []string{"abc\r\n", "abc\r", "abc", "abc\r\n."} {
		pr, pw := io.Pipe()
		gotFirst := make(chan struct{})
		go func() {
			pw.Write([]byte(first))
			select {
			case <-gotFirst:
				pw.Write([]byte(strings.TrimPrefix("abc\r\n.\r\n", first)))
			case <-time.After(10 * time.Second): // only bounds a failing test
				pw.CloseWithError(errors.New("Read blocked with data in hand"))
			}
		}()
		d := NewDotReader(bufio.NewReader(pr), 0, 0)
		buf := make([]byte, 100)
		n, err := d.Read(buf)
		close(gotFirst)
		if err != nil || n == 0 {
			t.Fatalf("%q: first Read = %d, %v", first, n, err)
		}
		rest, err := io.ReadAll(d)
		if err != nil || string(buf[:n])+string(rest) != "abc\r\n" {
			t.Errorf("%q: data %q + %q, %v", first, buf[:n], rest, err)
		}
	}
}
