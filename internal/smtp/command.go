package smtp

// Command is one SMTP command line split into its verb and argument
// (RFC 5321 §4.1.1: a command is a verb, optionally followed by a space and
// an argument, terminated by CRLF).
type Command struct {
	Verb string // upper-cased ASCII verb, e.g. "MAIL", "EHLO", "STARTTLS"
	Arg  string // everything after the verb and one separating space, as sent (may be "")
}

// maxVerbLen bounds the verb. The longest verb we know is 8 octets
// ("STARTTLS"); anything past 16 is not a command.
const maxVerbLen = 16

// ErrBareCRLF is returned by ParseCommand for a command line holding a CR or
// LF: RFC 5321 §2.3.8 allows them only together, as the line terminator,
// which the caller must already have removed.
var ErrBareCRLF error = E(CodeSyntax, EnhSyntax, "Bare CR or LF in command line not allowed (RFC 5321 §2.3.8)")

var (
	errEmptyCommand = E(CodeSyntax, EnhSyntax, "Syntax error: empty command")
	errBadVerb      = E(CodeSyntax, EnhSyntax, "Syntax error: command unrecognized")
	errControlChar  = E(CodeSyntax, EnhSyntax, "Syntax error: control character in command")
)

// ParseCommand splits a command line, given without its CRLF terminator,
// into verb and argument (RFC 5321 §4.1.1). The verb is one to 16 ASCII
// letters or digits, matched case-insensitively (§2.4) and returned
// upper-cased; it is separated from the argument by exactly one space, and
// the argument is returned as sent. Whether the verb is known, and whether
// the argument suits it, is the caller's business: verbs are the upper-case
// verbs it knows (the server's command table), and one of them comes back
// as that very string, without allocating; any other verb is upper-cased
// into a new string.
//
// Errors are *Error values carrying 500 5.5.2: an empty line, a bad verb,
// a CR or LF anywhere (ErrBareCRLF), or a control character (C0 or DEL)
// anywhere except HTAB inside the argument.
func ParseCommand(line []byte, verbs []string) (Command, error) {
	if len(line) == 0 {
		return Command{}, errEmptyCommand
	}
	for _, c := range line {
		if c == '\r' || c == '\n' {
			return Command{}, ErrBareCRLF
		}
	}
	end := 0
	for end < len(line) && line[end] != ' ' {
		c := line[end]
		if !isAlnum(c) {
			if isCtl(c) {
				return Command{}, errControlChar
			}
			return Command{}, errBadVerb
		}
		end++
	}
	if end == 0 || end > maxVerbLen {
		return Command{}, errBadVerb
	}
	var arg []byte
	if end < len(line) {
		arg = line[end+1:]
	}
	for _, c := range arg {
		if isCtl(c) && c != '\t' {
			return Command{}, errControlChar
		}
	}
	return Command{Verb: upperVerb(line[:end], verbs), Arg: string(arg)}, nil
}

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool { return isAlpha(c) || isDigit(c) }

// isCtl reports an ASCII control character: C0 or DEL.
func isCtl(c byte) bool { return c < 0x20 || c == 0x7f }

// upperVerb upper-cases a verb of at most maxVerbLen ASCII octets. One of
// verbs comes back as the caller's string, anything else as a new one.
func upperVerb(b []byte, verbs []string) string {
	var buf [maxVerbLen]byte
	up := buf[:len(b)]
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		up[i] = c
	}
	for _, v := range verbs {
		if string(up) == v {
			return v
		}
	}
	return string(up)
}

// lowerASCII lower-cases ASCII letters and leaves every other byte alone.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
