package config

import "time"

// Greylist is [greylist]: greylisting of mail arriving on mx listeners
// (internal/greylist, wired in internal/inbound). A new triplet of client
// network (/24, /64), sender and recipient gets 451 4.7.1 until the
// sender retries after Delay and within RetryWindow; it is then
// remembered for Expire after its last pass. Authenticated and trusted
// clients, DNSWL-listed ones and DKIM-aligned messages (with [verify]
// on) are never greylisted.
type Greylist struct {
	// Enabled turns greylisting on, default false.
	Enabled bool `toml:"enabled"`
	// Delay is how long a new triplet is deferred, default "5m".
	Delay Duration `toml:"delay"`
	// RetryWindow is how long after the first attempt a retry is still
	// taken as one, default "2d"; later, the triplet starts over.
	RetryWindow Duration `toml:"retry_window"`
	// Expire is how long a triplet that passed is remembered after its
	// last pass, default "35d".
	Expire Duration `toml:"expire"`
	// MaxEntries bounds the triplets held (memory and
	// <data_dir>/greylist/greylist.json), default 100000; when full the
	// oldest pending triplets are dropped first.
	MaxEntries int `toml:"max_entries"`
}

// defaultGreylist is the [greylist] of Default (postgrey's values).
func defaultGreylist() Greylist {
	return Greylist{
		Delay:       Duration(5 * time.Minute),
		RetryWindow: Duration(48 * time.Hour),
		Expire:      Duration(35 * 24 * time.Hour),
		MaxEntries:  100000,
	}
}

// maxGreylistEntries bounds greylist.max_entries: about 350 bytes each in
// memory (3.5 GB at the bound), 120 in the state file.
const maxGreylistEntries = 10_000_000

func (v *validator) greylist(g Greylist) {
	for _, d := range []struct {
		key string
		d   Duration
	}{{"greylist.delay", g.Delay}, {"greylist.retry_window", g.RetryWindow}, {"greylist.expire", g.Expire}} {
		if d.d <= 0 {
			v.add(d.key, "must be positive")
		}
	}
	if g.Delay > 0 && g.RetryWindow > 0 && g.RetryWindow <= g.Delay {
		v.add("greylist.retry_window", "%s must be longer than greylist.delay (%s)", g.RetryWindow, g.Delay)
	}
	if g.MaxEntries < 1 || g.MaxEntries > maxGreylistEntries {
		v.add("greylist.max_entries", "%d: want 1 to %d", g.MaxEntries, maxGreylistEntries)
	}
}
