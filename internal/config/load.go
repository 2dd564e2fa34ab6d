package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Problem is one thing wrong with a configuration. Validate returns the
// problems joined with errors.Join; Parse and Load fill in File and Line.
type Problem struct {
	File string // the config file, "" when the Config was built in code
	Line int    // 1-based line in File, 0 when unknown
	Key  string // the key concerned, e.g. "listener[1].tls" (0-based index); may be ""
	Msg  string
}

// Error formats the problem as "file:line: key: msg", leaving out what is unknown.
func (p *Problem) Error() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
	} else if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems returns the individual problems in an error from Parse, Load,
// Resolve or Validate (which join them with errors.Join). Errors that are
// not problems (a missing file, say) come back as a one-element list.
func Problems(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// Load reads the TOML file at path over Default() and validates the result.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return Parse(data, path)
}

// Resolve finds the configuration to run with. A non-empty path is loaded
// with Load. With an empty path, DefaultPath is loaded when it exists and
// DevDefault is used otherwise. source names what was used: the file path
// or DevDefaultSource.
func Resolve(path string) (cfg Config, source string, err error) {
	return resolve(path, DefaultPath)
}

func resolve(path, systemPath string) (Config, string, error) {
	if path == "" {
		if _, err := os.Stat(systemPath); errors.Is(err, fs.ErrNotExist) {
			return DevDefault(), DevDefaultSource, nil
		}
		path = systemPath
	}
	cfg, err := Load(path)
	return cfg, path, err
}

// Parse decodes TOML data over Default() and validates the result; name
// is the file name used in error messages. Decoding is strict: unknown keys
// are errors naming the key and its line. [[listener]], [[domain]],
// [[route]] and [[tls.certificate]] entries replace the defaults rather than
// adding to them; other keys not in the file keep their Default() values.
// A [[listener]] without tls gets its role's default (see Listener.TLS).
// Every problem found is reported, each a *Problem (see Problems).
func Parse(data []byte, name string) (Config, error) {
	src := string(data)
	idx := indexKeys(src)
	c := Default()
	c.Domains, c.Listeners, c.Routes, c.TLS.Certificates = nil, nil, nil, nil
	md, err := toml.Decode(src, &c)
	if err != nil {
		return Config{}, decodeProblem(err, name, idx)
	}
	var problems []error
	reported := map[string]bool{}
	for _, k := range md.Undecoded() {
		if reported[k.String()] {
			continue // listed once per array entry; linesOf finds them all
		}
		reported[k.String()] = true
		lines := idx.linesOf(k.String())
		if len(lines) == 0 {
			lines = []int{0}
		}
		for _, ln := range lines {
			problems = append(problems, &Problem{File: name, Line: ln, Key: k.String(), Msg: "unknown key"})
		}
	}
	def := Default()
	if !md.IsDefined("listener") {
		c.Listeners = def.Listeners
	}
	c.Listeners = fillListenerTLS(c.Listeners)
	c.Milters = fillMilters(c.Milters)
	if c.Outbound.Resolver != "" {
		c.Outbound.Resolver = withDefaultPort(c.Outbound.Resolver, "53")
	}
	for _, e := range Problems(c.Validate()) {
		p, ok := e.(*Problem)
		if !ok {
			p = &Problem{Msg: e.Error()}
		}
		q := *p
		q.File = name
		q.Line = idx.lineOf(q.Key)
		problems = append(problems, &q)
	}
	if len(problems) > 0 {
		return Config{}, errors.Join(problems...)
	}
	return c, nil
}

// decodeProblem turns a TOML decoding error into a *Problem with its line.
func decodeProblem(err error, name string, idx keyIndex) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		p := &Problem{File: name, Line: pe.Position.Line, Msg: pe.Message}
		// LastKey is the last key parsed; name it only when it is on the
		// error's line (a syntax error may come later than the last key).
		if pe.LastKey != "" && idx.lineOf(pe.LastKey) == p.Line {
			p.Key = pe.LastKey
		}
		return p
	}
	// Type mismatches are plain errors: "toml: line 8 (last key "x"): msg".
	msg := strings.TrimPrefix(err.Error(), "toml: ")
	if m := lineKeyRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Problem{File: name, Line: line, Key: m[2], Msg: msg[len(m[0]):]}
	}
	return &Problem{File: name, Msg: msg}
}

var lineKeyRE = regexp.MustCompile(`^line ([0-9]+) \(last key "([^"]*)"\): `)

// fillListenerTLS returns ls with empty TLS modes set from the role.
func fillListenerTLS(ls []Listener) []Listener {
	out := make([]Listener, len(ls))
	for i, l := range ls {
		if l.TLS == "" {
			switch l.Role {
			case RoleMX, RoleSink:
				l.TLS = TLSOpportunistic
			case RoleSubmission:
				l.TLS = TLSRequired
			case RoleSubmissions:
				l.TLS = TLSImplicit
			}
		}
		out[i] = l
	}
	return out
}

// withDefaultPort appends port to addr when addr is a bare host or IP.
func withDefaultPort(addr, port string) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(strings.Trim(addr, "[]"), port)
}
