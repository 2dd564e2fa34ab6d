package mtasts

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"smtpkit/internal/atomicfile"
)

// The on-disk cache: one file per policy domain, <Dir>/<domain>.json,
// replaced atomically (temporary file, fsync, rename, directory fsync)
// when a new policy is fetched. The policy is kept as text and parsed
// again when loaded, so that what is on disk is what was fetched.
const fileSuffix = ".json"

// maxFile bounds a cache file read at startup.
const maxFile = 1 << 20

// stored is a cache file.
type stored struct {
	Domain  string    `json:"domain"`
	ID      string    `json:"id"`
	Fetched time.Time `json:"fetched"`
	Policy  string    `json:"policy"` // the policy's lines, LF-separated
}

// save writes p to its file.
func (c *Cache) save(p *Policy) error {
	if c.dir == "" {
		return nil
	}
	data, err := json.MarshalIndent(stored{Domain: p.Domain, ID: p.ID, Fetched: p.Fetched.UTC(), Policy: strings.Join(p.Text, "\n") + "\n"}, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(c.dir, p.Domain+fileSuffix), append(data, '\n'), 0o600)
}

// load creates the cache directory if needed and reads the policies in it.
// A file that cannot be read or parsed is logged and skipped (the policy
// will be fetched again); one that is not a cache file is ignored.
func (c *Cache) load() ([]*Policy, error) {
	if c.dir == "" {
		return nil, nil
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return nil, fmt.Errorf("mtasts: %w", err)
	}
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, fmt.Errorf("mtasts: %w", err)
	}
	var out []*Policy
	for _, ent := range ents {
		name := ent.Name()
		domain, ok := strings.CutSuffix(name, fileSuffix)
		if !ok || strings.HasPrefix(name, ".") || !ent.Type().IsRegular() {
			continue
		}
		p, err := readFile(filepath.Join(c.dir, name), domain)
		if err != nil {
			c.log.Warn("mta-sts: skipping a cache file", "file", filepath.Join(c.dir, name), "err", err)
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// readFile reads one cache file, which must hold the policy of domain.
func readFile(path, domain string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFile {
		return nil, errors.New("file too large")
	}
	var s stored
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, err
	}
	if d, ok := normDomain(domain); !ok || d != domain || s.Domain != domain {
		return nil, fmt.Errorf("file for %q holds the policy of %q", domain, s.Domain)
	}
	if !isID(s.ID) {
		return nil, fmt.Errorf("malformed id %q", s.ID)
	}
	p, err := ParsePolicy([]byte(s.Policy))
	if err != nil {
		return nil, err
	}
	p.Domain, p.ID, p.Fetched = domain, s.ID, s.Fetched
	return &p, nil
}
