// Package mimeconv converts a message with 8-bit or binary content to 7 bit,
// so that it can travel to a server without 8BITMIME (RFC 6152 §3) or
// without BINARYMIME (RFC 3030 §4): each MIME leaf part whose octets are not
// 7-bit is re-encoded — quoted-printable for text/*, base64 for the rest
// (RFC 2045 §6.7, §6.8) —, multipart/* and message/rfc822 entities are
// walked into (RFC 2046 §5; RFC 2045 §6.4 forbids encoding them, so their
// content is converted instead and their transfer encoding becomes 7bit),
// and header fields with 8-bit text become RFC 2047 encoded-words.
//
// Everything that needs no change is copied byte for byte: header fields
// without 8-bit octets, boundaries, preambles and epilogues that are 7-bit,
// and 7-bit parts. The conversion streams: memory is bounded by the header
// block of one entity (MaxHeader), the look-ahead of one part declared 7bit
// (MaxHold) and the nesting depth (MaxDepth), whatever the message's size.
//
// What it does with each kind of header field (RFC 2047 §5 says where an
// encoded-word may stand):
//   - unstructured fields (Subject, Comments, Content-Description, X-…,
//     and every field this package does not know): the whole value becomes
//     encoded-words (RFC 2047 §5(1));
//   - address fields (From, To, Cc, Bcc, Reply-To, Sender, Resent-…):
//     re-written from their parsed addresses with each display name as an
//     encoded-word (RFC 2047 §5(3)); comments are dropped; an address whose
//     local part or domain is not ASCII cannot be converted (it needs
//     SMTPUTF8, RFC 6531): ErrCannotConvert;
//   - Content-Type and Content-Disposition: 8-bit parameter values are
//     written in RFC 2231 form (a filename* parameter in utf-8);
//   - other structured fields (Message-ID, Date, Received, References, …)
//     with 8-bit octets: ErrCannotConvert — they have no legal 7-bit form.
//
// A message without MIME structure (no MIME-Version and no Content-Type)
// whose body is 8-bit text — lines of at most 998 octets ending in CRLF, no
// NUL — is made a MIME message: MIME-Version, text/plain with charset utf-8
// (or unknown-8bit, RFC 1428, when it is not valid UTF-8) and
// quoted-printable, so that its octets arrive unchanged. Postfix sends such
// text as is, which RFC 6152 §3 does not allow (convert or bounce). A
// non-MIME body that is binary (NUL, bare CR or LF, longer lines) has no
// conversion: ErrNotMIME.
package mimeconv

import (
	"bufio"
	"errors"
	"io"
)

// Bounds of the conversion.
const (
	// MaxHeader caps one entity's header block (the message's or a
	// part's): a larger one is ErrCannotConvert.
	MaxHeader = 1 << 20
	// MaxHold is how much of a part declared 7bit (or without a transfer
	// encoding) is held to see whether it is really 7-bit before its header
	// is written. 8-bit octets further into such a part make
	// ErrCannotConvert.
	MaxHold = 4 << 20
	// MaxDepth caps the nesting of multipart and message/rfc822 entities;
	// deeper ones are copied as they are when 7-bit, else ErrCannotConvert.
	MaxDepth = 32
	// maxLine is the longest line of 7-bit data without its CRLF
	// (RFC 5322 §2.1.1).
	maxLine = 998
)

// ErrNotMIME is the error for a message that needs conversion but has no
// MIME structure to convert within: a non-MIME body with binary content.
// Delivery bounces it with 554 5.6.3 (RFC 3030 §4, RFC 6152 §3).
var ErrNotMIME = errors.New("mimeconv: binary content without MIME structure cannot be converted to 7 bit")

// ErrCannotConvert is the error for MIME content that has no legal 7-bit
// form: 8-bit octets in a structured header field or an address, in a part
// declared quoted-printable or base64, in a multipart without a boundary or
// nested deeper than MaxDepth, or past MaxHold in a part declared 7bit.
// Delivery bounces it with 554 5.6.3.
var ErrCannotConvert = errors.New("mimeconv: content cannot be converted to 7 bit")

// To7Bit copies the message src (CRLF text, header then body) to dst with
// every part that is not 7-bit converted, as the package doc says. changed
// reports whether the output differs from the input. On error, dst may hold
// a partial copy: callers that must not send one check first, with
// io.Discard as dst.
func To7Bit(dst io.Writer, src io.Reader) (changed bool, err error) {
	c := &conv{
		in:  newPieceReader(bufio.NewReaderSize(src, 64<<10)),
		out: bufio.NewWriterSize(dst, 64<<10),
	}
	h, err := c.readHeader(nil)
	if err != nil {
		return false, err
	}
	if _, err = c.entity(h, nil, 0, true, false); err != nil {
		return c.changed, err
	}
	return c.changed, c.out.Flush()
}

// conv is one conversion.
type conv struct {
	in      *pieceReader
	out     *bufio.Writer
	changed bool
	delim   []byte // the delimiter line a part's content stopped at, not yet written
}
