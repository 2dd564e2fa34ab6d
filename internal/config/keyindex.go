package config

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// keyIndex maps the keys of a TOML source to the lines that define them,
// so that unknown keys and validation problems can name a line. Keys are
// written as Problem.Key is: dotted, with 0-based indexes for arrays of
// tables ("listener[1].tls"); a table or array entry maps to its header.
type keyIndex map[string]int

// lineOf returns the line defining key, or of its nearest enclosing table
// or array entry when the key itself is not in the source; 0 if none.
func (x keyIndex) lineOf(key string) int {
	for key != "" {
		if ln, ok := x[key]; ok {
			return ln
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			return 0
		}
		key = key[:i]
	}
	return 0
}

var indexRE = regexp.MustCompile(`\[[0-9]+\]`)

// linesOf returns, in order, every line defining key, where key has no
// array indexes (the form toml.Key.String gives, e.g. "listener.tsl").
func (x keyIndex) linesOf(key string) []int {
	var lines []int
	for k, ln := range x {
		if indexRE.ReplaceAllString(k, "") == key {
			lines = append(lines, ln)
		}
	}
	slices.Sort(lines)
	return lines
}

// scanState is what carries over from one line to the next: an open
// multi-line string and the depth of open arrays and inline tables.
type scanState struct {
	mlDelim string // `"""` or `'''` while inside a multi-line string
	depth   int
}

// indexKeys indexes src. It is a line scanner, not a TOML parser: it runs
// after (or alongside) the real decoder and only needs to be right for
// sources the decoder accepts.
func indexKeys(src string) keyIndex {
	x := keyIndex{}
	counts := map[string]int{} // indexed array path → entries seen
	table := ""                // indexed path of the current table
	var st scanState
	for i, line := range strings.Split(src, "\n") {
		ln := i + 1
		if st.mlDelim != "" || st.depth > 0 {
			st.scan(line)
			continue
		}
		t := strings.TrimSpace(line)
		switch {
		case t == "" || t[0] == '#':
		case strings.HasPrefix(t, "[["):
			parts, _ := splitKey(t[2:], "]]")
			if len(parts) == 0 {
				continue
			}
			parent := indexedPath(x, counts, parts[:len(parts)-1])
			arr := join(parent, parts[len(parts)-1])
			n := counts[arr]
			counts[arr] = n + 1
			table = arr + "[" + strconv.Itoa(n) + "]"
			x[table] = ln
		case t[0] == '[':
			parts, _ := splitKey(t[1:], "]")
			table = indexedPath(x, counts, parts)
			if _, ok := x[table]; !ok {
				x[table] = ln
			}
		default:
			parts, rest := splitKey(t, "=")
			if len(parts) == 0 {
				continue
			}
			key := table
			for _, p := range parts {
				key = join(key, p)
			}
			if _, ok := x[key]; !ok {
				x[key] = ln
			}
			st.scan(rest)
		}
	}
	return x
}

// indexedPath turns table parts into an indexed path, using the latest
// entry of any array of tables along the way.
func indexedPath(x keyIndex, counts map[string]int, parts []string) string {
	path := ""
	for _, p := range parts {
		path = join(path, p)
		if n := counts[path]; n > 0 {
			path += "[" + strconv.Itoa(n-1) + "]"
		}
	}
	return path
}

func join(prefix, part string) string {
	if prefix == "" {
		return part
	}
	return prefix + "." + part
}

// splitKey reads a dotted key (bare or quoted parts) from s up to end and
// returns its parts and what follows end.
func splitKey(s, end string) (parts []string, rest string) {
	for {
		s = strings.TrimLeft(s, " \t")
		var part string
		switch {
		case s == "":
			return nil, ""
		case s[0] == '"':
			j := strings.IndexByte(s[1:], '"')
			if j < 0 {
				return nil, ""
			}
			part, s = quoteIfNeeded(s[1:1+j]), s[2+j:]
		case s[0] == '\'':
			j := strings.IndexByte(s[1:], '\'')
			if j < 0 {
				return nil, ""
			}
			part, s = quoteIfNeeded(s[1:1+j]), s[2+j:]
		default:
			j := 0
			for j < len(s) && isBare(s[j]) {
				j++
			}
			part, s = s[:j], s[j:]
		}
		parts = append(parts, part)
		s = strings.TrimLeft(s, " \t")
		switch {
		case strings.HasPrefix(s, "."):
			s = s[1:]
		case strings.HasPrefix(s, end):
			return parts, s[len(end):]
		default:
			return nil, ""
		}
	}
}

func isBare(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// quoteIfNeeded writes a key part the way toml.Key.String does: bare when
// it can be, otherwise quoted.
func quoteIfNeeded(p string) string {
	for i := 0; i < len(p); i++ {
		if !isBare(p[i]) {
			return strconv.Quote(p)
		}
	}
	if p == "" {
		return `""`
	}
	return p
}

// scan advances the state over one line of value text.
func (st *scanState) scan(s string) {
	for i := 0; i < len(s); i++ {
		if st.mlDelim != "" {
			if st.mlDelim == `"""` && s[i] == '\\' {
				i++
				continue
			}
			if strings.HasPrefix(s[i:], st.mlDelim) {
				i += 2
				st.mlDelim = ""
			}
			continue
		}
		switch c := s[i]; c {
		case '#':
			return
		case '[', '{':
			st.depth++
		case ']', '}':
			if st.depth > 0 {
				st.depth--
			}
		case '"', '\'':
			if d := strings.Repeat(string(c), 3); strings.HasPrefix(s[i:], d) {
				st.mlDelim = d
				i += 2
				continue
			}
			i = skipString(s, i)
		}
	}
}

// skipString returns the index of the quote closing the one-line string
// that opens at s[i] (or the end of s).
func skipString(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		if q == '"' && s[j] == '\\' {
			j++
			continue
		}
		if s[j] == q {
			return j
		}
	}
	return len(s)
}
