package crashfs

import (
	"math/rand/v2"
)

// Crash cuts the power and returns the file system as it comes back in
// the strict mode: only what was made durable survives. This FS and its
// open files are dead afterwards.
func (f *FS) Crash() *FS { return f.crash(nil) }

// CrashRandom cuts the power and returns the file system as it comes back
// when the page cache was written back in part: each unsynced change
// survives or not, chosen by a generator seeded with seed (see the
// package doc). This FS and its open files are dead afterwards.
func (f *FS) CrashRandom(seed uint64) *FS {
	return f.crash(rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)))
}

func (f *FS) crash(rng *rand.Rand) *FS {
	old := f.s
	old.mu.Lock()
	defer old.mu.Unlock()
	old.dead = true
	s := newState(old.opts)
	b := rebuild{s: s, rng: rng, done: make(map[*inode]*inode)}
	s.root = b.inode(old.root)
	s.root.nlink = 1
	s.ino = old.ino
	return &FS{s: s}
}

// rebuild makes the post-crash copy of a tree.
type rebuild struct {
	s    *state
	rng  *rand.Rand // nil: strict
	done map[*inode]*inode
}

// inode returns the post-crash copy of n, made once per inode so that
// hard links stay shared.
func (b *rebuild) inode(n *inode) *inode {
	if c, ok := b.done[n]; ok {
		return c
	}
	c := &inode{ino: n.ino, dir: n.dir, mount: n.mount, mode: n.durMode, durMode: n.durMode, mtime: n.mtime}
	b.done[n] = c
	b.s.live[c] = struct{}{}
	if !n.dir {
		c.data = b.content(n)
		c.dur = append([]byte(nil), c.data...)
		b.s.used += blocks(int64(len(c.data)))
		return c
	}
	c.ents = make(map[string]*inode)
	for name, child := range b.entries(n) {
		if _, seen := b.done[child]; seen && child.dir {
			continue // a directory under two names (a half-done rename): keep the first
		}
		cc := b.inode(child)
		c.ents[name] = cc
		cc.nlink++
	}
	c.durEnts = make(map[string]*inode, len(c.ents))
	for k, v := range c.ents {
		c.durEnts[k] = v
	}
	return c
}

// entries is what survives of the directory n: its durable entries and,
// in the random mode, each logged operation with probability 1/2, in
// order.
func (b *rebuild) entries(n *inode) map[string]*inode {
	out := make(map[string]*inode, len(n.durEnts))
	for k, v := range n.durEnts {
		out[k] = v
	}
	if b.rng == nil {
		return out
	}
	for _, op := range n.log {
		if b.rng.IntN(2) == 0 {
			continue
		}
		for _, c := range op {
			if c.ino == nil {
				delete(out, c.name)
			} else {
				out[c.name] = c.ino
			}
		}
	}
	return out
}

// content is what survives of the file n's data: the durable content or,
// in the random mode, a size between the durable and the volatile one and
// each changed page new or old.
func (b *rebuild) content(n *inode) []byte {
	if b.rng == nil || (n.dirtyLo == n.dirtyHi && !n.sizeDirty) {
		return append([]byte(nil), n.dur...)
	}
	durSize, volSize := len(n.dur), len(n.data)
	size := durSize
	switch b.rng.IntN(3) {
	case 1:
		size = volSize
	case 2:
		if volSize > durSize {
			// a page boundary past the durable size, or the volatile size
			first := durSize/blockSize + 1
			last := (volSize + blockSize - 1) / blockSize
			size = min(volSize, (first+b.rng.IntN(last-first+1))*blockSize)
		}
	}
	out := make([]byte, size)
	copy(out, n.dur)
	lo, hi := min(n.dirtyLo, size), min(n.dirtyHi, size)
	if n.sizeDirty && volSize > durSize {
		hi = max(hi, min(volSize, size))
	}
	for p := lo / blockSize * blockSize; p < hi; p += blockSize {
		if b.rng.IntN(2) == 0 {
			continue // the page keeps its durable bytes (zeros past them)
		}
		end := min(p+blockSize, hi, volSize)
		if p < end {
			copy(out[p:end], n.data[p:end])
		}
	}
	return out
}
