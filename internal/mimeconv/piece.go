package mimeconv

import (
	"bufio"
	"errors"
	"io"
)

// piece is one line of the input with its line end, or a part of a line
// longer than the read buffer. Its data is valid until the next read.
type piece struct {
	data      []byte
	lineStart bool // the previous piece ended in CRLF (or there was none)
	eof       bool // the input ended inside this piece (no line end)
}

// crlf reports whether the piece ends with CRLF.
func (p piece) crlf() bool {
	n := len(p.data)
	return n >= 2 && p.data[n-2] == '\r' && p.data[n-1] == '\n'
}

// text returns the piece without its CRLF.
func (p piece) text() []byte {
	if p.crlf() {
		return p.data[:len(p.data)-2]
	}
	return p.data
}

// sevenBit reports whether the piece is a line of 7-bit data (RFC 2045
// §2.7): at most 998 octets of 1–127 ending in CRLF (or the last line of the
// input), no CR or LF but the line end's.
func (p piece) sevenBit() bool {
	if !p.crlf() && !p.eof {
		return false
	}
	t := p.text()
	if len(t) > maxLine {
		return false
	}
	for _, b := range t {
		if b == 0 || b >= 0x80 || b == '\r' || b == '\n' {
			return false
		}
	}
	return true
}

// textLine reports whether the piece is a line of 8-bit text data
// (RFC 2045 §2.8): as sevenBit, but octets above 127 allowed.
func (p piece) textLine() bool {
	if !p.crlf() && !p.eof {
		return false
	}
	t := p.text()
	if len(t) > maxLine {
		return false
	}
	for _, b := range t {
		if b == 0 || b == '\r' || b == '\n' {
			return false
		}
	}
	return true
}

// pieceReader splits the input into pieces, with one piece of push-back.
type pieceReader struct {
	r        *bufio.Reader
	lastCRLF bool
	started  bool
	back     *piece
	buf      []byte // the pushed-back piece's copy
	err      error
}

func newPieceReader(r *bufio.Reader) *pieceReader { return &pieceReader{r: r} }

// next returns the next piece; ok is false at the end of the input.
func (pr *pieceReader) next() (p piece, ok bool, err error) {
	if pr.back != nil {
		p, pr.back = *pr.back, nil
		return p, true, nil
	}
	if pr.err != nil {
		if pr.err == io.EOF {
			return piece{}, false, nil
		}
		return piece{}, false, pr.err
	}
	data, err := pr.r.ReadSlice('\n')
	switch {
	case err == nil, errors.Is(err, bufio.ErrBufferFull):
	case err == io.EOF:
		pr.err = io.EOF
	default:
		pr.err = err
		return piece{}, false, err
	}
	if len(data) == 0 {
		return piece{}, false, nil
	}
	p = piece{data: data, lineStart: !pr.started || pr.lastCRLF}
	pr.started = true
	p.eof = pr.err == io.EOF // the last piece: it lacks a line end
	pr.lastCRLF = p.crlf()
	return p, true, nil
}

// unread pushes p back; the next call of next returns it again.
func (pr *pieceReader) unread(p piece) {
	pr.buf = append(pr.buf[:0], p.data...)
	p.data = pr.buf
	pr.back = &p
}
