// Package gitpack reads the objects of Git pack files directly, without a
// git process: the version 2 index beside each pack, object headers, zlib
// streams and both kinds of delta.
//
// It exists for scans that want every blob of a repository once, in the order
// the pack stores them. Walking a pack in offset order finds each delta's base
// already decoded, so a blob costs one inflate of its delta and one copy, where
// `git cat-file --batch` asked for blobs in history order resolves delta chains
// again and again and pipes every byte through a second process. Packs are
// mapped into memory read-only; nothing is written.
//
// Only pack files are read: loose objects and alternates are left to the
// caller (for instance through git itself).
package gitpack

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/flate"
)

// Type is the type of a Git object.
type Type uint8

// Object types, as numbered in pack files.
const (
	Commit Type = 1
	Tree   Type = 2
	Blob   Type = 3
	Tag    Type = 4

	ofsDelta Type = 6
	refDelta Type = 7
)

var typeNames = [...]string{Commit: "commit", Tree: "tree", Blob: "blob", Tag: "tag", ofsDelta: "ofs-delta", refDelta: "ref-delta"}

func (t Type) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return fmt.Sprintf("type %d", t)
}

// ErrCorrupt reports a pack or index that does not parse.
var ErrCorrupt = errors.New("gitpack: corrupt pack")

// HashSize returns the object ID size in bytes of a repository whose object
// format (`git rev-parse --show-object-format`) is format, or 0 if unknown.
func HashSize(format string) int {
	switch strings.TrimSpace(format) {
	case "sha1":
		return 20
	case "sha256":
		return 32
	}
	return 0
}

// Pack is one pack file with its index, mapped into memory.
type Pack struct {
	path     string
	data     []byte // the .pack file
	unmap    func() error
	release  func(lo, hi int) // drops the mapped pages of data[lo:hi] from memory
	hashSize int
	ids      []byte   // the index's sorted object IDs, hashSize bytes each
	offsets  []uint64 // offset of ids[i]
	order    []int32  // index positions sorted by offset
	sorted   []uint64 // the offsets of order, for binary searches

	layoutOnce sync.Once // the layout is parsed by the first Walk
	lay        *layout
	layErr     error
}

// Open opens the pack file at path (…/pack-*.pack) and its index (.idx).
// hashSize is 20 for SHA-1 repositories and 32 for SHA-256 ones.
func Open(path string, hashSize int) (*Pack, error) {
	if hashSize != 20 && hashSize != 32 {
		return nil, fmt.Errorf("gitpack: hash size %d", hashSize)
	}
	idx, err := os.ReadFile(strings.TrimSuffix(path, ".pack") + ".idx")
	if err != nil {
		return nil, fmt.Errorf("gitpack: %w", err)
	}
	p := &Pack{path: path, hashSize: hashSize}
	if err := p.parseIndex(idx); err != nil {
		return nil, fmt.Errorf("%w: %s", err, filepath.Base(path))
	}
	if p.data, p.unmap, p.release, err = mapFile(path); err != nil {
		return nil, fmt.Errorf("gitpack: %w", err)
	}
	if len(p.data) < 12+hashSize || string(p.data[:4]) != "PACK" {
		p.Close()
		return nil, fmt.Errorf("%w: %s: bad header", ErrCorrupt, filepath.Base(path))
	}
	if v := binary.BigEndian.Uint32(p.data[4:]); v != 2 && v != 3 {
		p.Close()
		return nil, fmt.Errorf("gitpack: %s: pack version %d", filepath.Base(path), v)
	}
	if n := binary.BigEndian.Uint32(p.data[8:]); int(n) != len(p.offsets) {
		p.Close()
		return nil, fmt.Errorf("%w: %s: %d objects, index lists %d", ErrCorrupt, filepath.Base(path), n, len(p.offsets))
	}
	end := uint64(len(p.data) - hashSize)
	for _, off := range p.offsets {
		if off < 12 || off >= end {
			p.Close()
			return nil, fmt.Errorf("%w: %s: offset %d out of range", ErrCorrupt, filepath.Base(path), off)
		}
	}
	return p, nil
}

// Glob opens every pack under objectsDir/pack, sorted by name. With
// hashSize 0, each pack's is taken from its name (NameHashSize). On an error
// the packs already opened are closed.
func Glob(objectsDir string, hashSize int) ([]*Pack, error) {
	names, err := filepath.Glob(filepath.Join(objectsDir, "pack", "pack-*.pack"))
	if err != nil {
		return nil, err
	}
	var packs []*Pack
	for _, name := range names {
		hs := hashSize
		if hs == 0 {
			hs = NameHashSize(name)
		}
		p, err := Open(name, hs)
		if err != nil {
			for _, p := range packs {
				p.Close()
			}
			return nil, err
		}
		packs = append(packs, p)
	}
	return packs, nil
}

// NameHashSize returns the object ID size of the repository a pack belongs
// to from the pack's name, pack-<checksum>.pack, where Git writes the
// checksum with the repository's hash (40 hex digits for SHA-1, 64 for
// SHA-256); 0 if the name is not of that form.
func NameHashSize(path string) int {
	sum, ok := strings.CutPrefix(strings.TrimSuffix(filepath.Base(path), ".pack"), "pack-")
	if _, err := hex.DecodeString(sum); !ok || err != nil {
		return 0
	}
	switch len(sum) {
	case 40:
		return 20
	case 64:
		return 32
	}
	return 0
}

// parseIndex reads a version 2 pack index.
func (p *Pack) parseIndex(idx []byte) error {
	hs := p.hashSize
	if len(idx) < 8+256*4+2*hs || string(idx[:4]) != "\xfftOc" {
		return fmt.Errorf("%w: not a version 2 index", ErrCorrupt)
	}
	if v := binary.BigEndian.Uint32(idx[4:]); v != 2 {
		return fmt.Errorf("gitpack: index version %d", v)
	}
	n := int(binary.BigEndian.Uint32(idx[8+255*4:]))
	ids := 8 + 256*4
	offs := ids + n*hs + n*4 // after the IDs and their CRCs
	large := offs + n*4
	if n < 0 || large > len(idx)-2*hs {
		return fmt.Errorf("%w: index too short for %d objects", ErrCorrupt, n)
	}
	p.ids = idx[ids : ids+n*hs]
	p.offsets = make([]uint64, n)
	for i := range n {
		off := uint64(binary.BigEndian.Uint32(idx[offs+4*i:]))
		if off&(1<<31) != 0 {
			j := large + 8*int(off&^(1<<31))
			if j+8 > len(idx)-2*hs {
				return fmt.Errorf("%w: large offset out of range", ErrCorrupt)
			}
			off = binary.BigEndian.Uint64(idx[j:])
		}
		p.offsets[i] = off
	}
	// Sorted as pairs, whose comparisons read memory in order.
	type offsetAt struct {
		off uint64
		idx int32
	}
	pairs := make([]offsetAt, n)
	for i, off := range p.offsets {
		pairs[i] = offsetAt{off, int32(i)}
	}
	slices.SortFunc(pairs, func(a, b offsetAt) int { return cmp.Compare(a.off, b.off) })
	p.order, p.sorted = make([]int32, n), make([]uint64, n)
	for i, pr := range pairs {
		p.order[i], p.sorted[i] = pr.idx, pr.off
	}
	return nil
}

// Len returns the number of objects in the pack.
func (p *Pack) Len() int { return len(p.offsets) }

// Close unmaps the pack.
func (p *Pack) Close() error {
	if p.unmap == nil {
		return nil
	}
	err := p.unmap()
	p.unmap, p.data = nil, nil
	return err
}

// binaryID returns the ID of the object at index position i.
func (p *Pack) binaryID(i int) []byte {
	return p.ids[i*p.hashSize : (i+1)*p.hashSize : (i+1)*p.hashSize]
}

// Hex returns the object's ID in hexadecimal, as Git prints it.
func (o Object) Hex() string { return hex.EncodeToString(o.ID) }

// find returns the index position of the object with the binary ID id.
func (p *Pack) find(id []byte) (int, bool) {
	hs := p.hashSize
	i := sort.Search(len(p.offsets), func(i int) bool { return bytes.Compare(p.ids[i*hs:(i+1)*hs], id) >= 0 })
	return i, i < len(p.offsets) && bytes.Equal(p.ids[i*hs:(i+1)*hs], id)
}

// entry is an object's header in the pack.
type entry struct {
	typ    Type
	size   uint64 // inflated size of the entry's data (the delta's, for a delta)
	base   uint64 // ofs-delta: the base's offset
	baseID []byte // ref-delta: the base's binary ID
	data   uint64 // offset of the zlib stream
}

// entryAt parses the object header at off.
func (p *Pack) entryAt(off uint64) (entry, error) {
	d := p.data
	end := uint64(len(d) - p.hashSize)
	if off >= end {
		return entry{}, fmt.Errorf("%w: offset %d out of range", ErrCorrupt, off)
	}
	c := d[off]
	e := entry{typ: Type(c>>4) & 7, size: uint64(c & 15)}
	i, shift := off+1, uint(4)
	for c&0x80 != 0 {
		if i >= end || shift > 57 {
			return entry{}, fmt.Errorf("%w: bad object header at %d", ErrCorrupt, off)
		}
		c = d[i]
		e.size |= uint64(c&0x7f) << shift
		i++
		shift += 7
	}
	switch e.typ {
	case Commit, Tree, Blob, Tag:
	case ofsDelta:
		if i >= end {
			return entry{}, fmt.Errorf("%w: truncated delta at %d", ErrCorrupt, off)
		}
		c = d[i]
		i++
		rel := uint64(c & 0x7f)
		for c&0x80 != 0 {
			if i >= end || rel > 1<<56 {
				return entry{}, fmt.Errorf("%w: bad delta offset at %d", ErrCorrupt, off)
			}
			c = d[i]
			i++
			rel = (rel+1)<<7 | uint64(c&0x7f)
		}
		if rel == 0 || rel > off {
			return entry{}, fmt.Errorf("%w: delta base out of range at %d", ErrCorrupt, off)
		}
		e.base = off - rel
	case refDelta:
		if i+uint64(p.hashSize) > end {
			return entry{}, fmt.Errorf("%w: truncated delta at %d", ErrCorrupt, off)
		}
		e.baseID = d[i : i+uint64(p.hashSize)]
		i += uint64(p.hashSize)
	default:
		return entry{}, fmt.Errorf("%w: object type %d at %d", ErrCorrupt, e.typ, off)
	}
	e.data = i
	return e, nil
}

// Object is an object of a pack, as Walk hands it over.
type Object struct {
	// ID is the object's binary ID. It must not be modified.
	ID []byte
	// Type is the object's type (deltas resolved).
	Type Type
	// Size is the object's size in bytes.
	Size int64
	// Data is the object's content, or nil for a blob over the walk's
	// limit. It must not be modified (later deltas may be decoded from
	// it). It may be kept, unless the walk reuses blobs' memory
	// (WalkOptions.ReuseBlobData).
	Data []byte
}

// WalkOptions control Walk.
type WalkOptions struct {
	// Type selects the objects handed over (deltas resolved); 0 means all.
	Type Type
	// MaxSize is the size above which blobs are handed over without their
	// content (0: no limit). They are still decoded when another object is
	// a delta against them. Commits, trees and tags always come whole.
	MaxSize int64
	// CacheBytes bounds the content each worker keeps for deltas not yet
	// decoded (default 64 MiB). Over it, a base is decoded again when
	// needed.
	CacheBytes int64
	// Workers is the number of goroutines decoding the pack (default 1).
	Workers int
	// ReuseBlobData lets Walk reuse the memory of a blob's Data once fn has
	// returned: fn must not keep it, or anything sliced from it. A walk
	// that scans blobs and forgets them then allocates a fraction of what
	// the pack holds.
	ReuseBlobData bool
}

// Walk calls fn for every object of the pack of the selected type, in the
// order the pack stores them. Walks after the first reuse what it learnt of
// the pack's layout. With opt.Workers above one, the objects are
// dealt to that many goroutines by delta family (an object stored whole and
// the deltas that lead to it), so that no goroutine waits for or repeats
// another's work, and fn is called concurrently. Walk stops at the first
// error fn returns and returns it.
func (p *Pack) Walk(opt WalkOptions, fn func(Object) error) error {
	p.layoutOnce.Do(func() { p.lay, p.layErr = p.layout() })
	l, err := p.lay, p.layErr
	if err != nil {
		return err
	}
	n := len(p.order)
	runs := max(1, min(opt.Workers, n/64))
	if runs == 1 {
		return l.walk(opt, 0, 1, fn, nil)
	}
	var (
		wg    sync.WaitGroup
		stop  atomic.Bool
		errMu sync.Mutex
		first error
	)
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.walk(opt, i, runs, fn, &stop); err != nil {
				stop.Store(true)
				errMu.Lock()
				if first == nil {
					first = err
				}
				errMu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// layout is what Walk knows of every object before decoding any: its
// header, final type and delta base. Positions index Pack.order.
type layout struct {
	p       *Pack
	entries []entry
	types   []Type  // final type, deltas resolved
	bases   []int32 // position of the delta base, or -1
	roots   []int32 // position of the object stored whole at the end of the chain
}

// layout parses every object header of the pack.
func (p *Pack) layout() (*layout, error) {
	n := len(p.order)
	l := &layout{p: p, entries: make([]entry, n), types: make([]Type, n), bases: make([]int32, n), roots: make([]int32, n)}
	byOffset := func(off uint64) (int32, bool) {
		i, ok := slices.BinarySearch(p.sorted, off)
		return int32(i), ok
	}
	var inverse []int32 // index position → order position, for ref-deltas
	for pos := range p.order {
		e, err := p.entryAt(p.sorted[pos])
		if err != nil {
			return nil, err
		}
		l.entries[pos] = e
		l.bases[pos] = -1
		l.roots[pos] = -1
		switch e.typ {
		case ofsDelta:
			b, ok := byOffset(e.base)
			if !ok {
				return nil, fmt.Errorf("%w: no object at delta base offset %d", ErrCorrupt, e.base)
			}
			l.bases[pos] = b
		case refDelta:
			if inverse == nil {
				inverse = make([]int32, n)
				for pos, idx := range p.order {
					inverse[idx] = int32(pos)
				}
			}
			i, ok := p.find(e.baseID)
			if !ok {
				return nil, fmt.Errorf("gitpack: %s: delta base %x is not in the pack", filepath.Base(p.path), e.baseID)
			}
			l.bases[pos] = inverse[i]
		default:
			l.types[pos] = e.typ
			l.roots[pos] = int32(pos)
		}
	}
	for pos := range n {
		if err := l.resolveRoot(int32(pos), 0); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// resolveRoot fills in the type and root of a delta from its base's.
func (l *layout) resolveRoot(pos int32, depth int) error {
	if l.roots[pos] >= 0 {
		return nil
	}
	if depth > maxDepth {
		return fmt.Errorf("%w: delta chain too long or circular", ErrCorrupt)
	}
	b := l.bases[pos]
	if err := l.resolveRoot(b, depth+1); err != nil {
		return err
	}
	l.types[pos], l.roots[pos] = l.types[b], l.roots[b]
	return nil
}

// walk hands over the selected objects of the delta families dealt to run
// (those whose root position is run modulo runs), until stop is set.
func (l *layout) walk(opt WalkOptions, run, runs int, fn func(Object) error, stop *atomic.Bool) error {
	w := &walker{layout: l, children: make([]int32, len(l.entries)), cache: map[int32][]byte{},
		limit: cmp.Or(opt.CacheBytes, 64<<20), reuse: opt.ReuseBlobData}
	w.get = w.pool.get
	mine := func(pos int) bool {
		return (opt.Type == 0 || l.types[pos] == opt.Type) && int(l.roots[pos])%runs == run
	}
	for pos := range l.entries {
		if b := l.bases[pos]; b >= 0 && mine(pos) {
			w.children[b]++
		}
	}
	mark := 0
	for pos := range l.entries {
		if !mine(pos) {
			continue
		}
		if off := int(l.p.sorted[pos]); off-mark >= releaseEvery {
			l.p.release(mark, off)
			mark = off
		}
		typ := l.types[pos]
		if stop != nil && stop.Load() {
			return nil
		}
		obj := Object{ID: l.p.binaryID(int(l.p.order[pos])), Type: typ}
		limit := opt.MaxSize
		if typ != Blob {
			limit = 0
		}
		var err error
		if obj.Data, obj.Size, err = w.object(int32(pos), limit); err != nil {
			return err
		}
		w.done(int32(pos), obj.Data)
		if err := fn(obj); err != nil {
			return err
		}
		if obj.Data != nil && w.cache[int32(pos)] == nil {
			w.release(int32(pos), obj.Data)
		}
	}
	return nil
}

// walker decodes the objects of one run of a Walk.
type walker struct {
	*layout
	children []int32 // deltas of interest not yet decoded, by base
	cache    map[int32][]byte
	cached   int64
	limit    int64
	fr       io.ReadCloser
	src      bytes.Reader
	scratch  []byte
	outer    []byte // the delta of the object being handed over
	reuse    bool   // blobs' memory is reused (WalkOptions.ReuseBlobData)
	pool     bufPool
	get      func(uint64) []byte // pool.get
}

// releaseEvery is how far a walk moves on before it lets go of the mapped
// pages it has read (they are read again if an older base is needed), so
// that a large pack's size does not show in resident memory.
var releaseEvery = 16 << 20

// maxDepth bounds delta chains (Git's own limit is 4095).
const maxDepth = 10000

// object returns the content of the object at pos, or nil and its size
// when max is above zero and the object is larger than max.
func (w *walker) object(pos int32, max int64) (data []byte, size int64, err error) {
	e := w.entries[pos]
	base := w.bases[pos]
	if cached, ok := w.cache[pos]; ok {
		if max > 0 && int64(len(cached)) > max {
			return nil, int64(len(cached)), nil
		}
		return cached, int64(len(cached)), nil
	}
	if base < 0 {
		if max > 0 && e.size > uint64(max) {
			return nil, int64(e.size), nil
		}
		data, err = w.resolve(pos)
		return data, int64(len(data)), err
	}
	// A delta starts with the size of its result. A small one is inflated
	// once, into its own buffer (decoding its base reuses the scratch one);
	// of a large one, only its start is until the size is known to be
	// under max.
	if max > 0 && e.size > bigDelta {
		head, err := w.inflate(e, 32)
		if err != nil {
			return nil, 0, err
		}
		if target, err := targetSize(head); err != nil || target > uint64(max) {
			return nil, int64(target), err
		}
	}
	delta, err := w.inflateInto(&w.outer, e, e.size)
	if err != nil {
		return nil, 0, err
	}
	if cap(w.outer) > bigDelta {
		w.outer = nil // not kept for the next one
	}
	target, err := targetSize(delta)
	if err != nil {
		return nil, 0, err
	}
	if max > 0 && target > uint64(max) {
		return nil, int64(target), nil
	}
	b, err := w.resolve(base)
	if err != nil {
		return nil, 0, err
	}
	if data, err = patch(w.allocator(pos), b, delta); err != nil {
		return nil, 0, fmt.Errorf("%w (object at %d)", err, w.p.sorted[pos])
	}
	if w.cache[base] == nil {
		w.release(base, b)
	}
	return data, int64(len(data)), nil
}

// bigDelta is the delta size over which object reads the result size from
// the start of the delta first.
const bigDelta = 1 << 20

// targetSize returns the size of a delta's result, its second number.
func targetSize(delta []byte) (uint64, error) {
	_, n, err := deltaSize(delta)
	if err != nil {
		return 0, err
	}
	size, _, err := deltaSize(delta[n:])
	return size, err
}

// inflate decompresses the first n bytes of an entry's data into the
// walker's scratch buffer. The result is only valid until the next call.
func (w *walker) inflate(e entry, n uint64) ([]byte, error) {
	return w.inflateInto(&w.scratch, e, n)
}

// inflateInto decompresses the first n bytes of an entry's data into *buf,
// growing it as needed.
func (w *walker) inflateInto(buf *[]byte, e entry, n uint64) ([]byte, error) {
	// zlib inflates at most 1032 times, so a larger size is a lie.
	if n/1032 > uint64(len(w.p.data)) {
		return nil, fmt.Errorf("%w: object size %d", ErrCorrupt, n)
	}
	// A zlib stream is a two-byte header, deflate data and a checksum.
	// Git never uses a preset dictionary; the checksum is left unread (git
	// checked the pack when it stored it).
	d := w.p.data[e.data:]
	if len(d) < 2 || d[0]&0x0f != 8 || d[1]&0x20 != 0 || (uint16(d[0])<<8|uint16(d[1]))%31 != 0 {
		return nil, fmt.Errorf("%w: bad zlib header at %d", ErrCorrupt, e.data)
	}
	w.src.Reset(d[2:])
	if w.fr == nil {
		w.fr = flate.NewReader(&w.src)
	} else if err := w.fr.(flate.Resetter).Reset(&w.src, nil); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if uint64(cap(*buf)) < n {
		*buf = make([]byte, n)
	}
	out := (*buf)[:n]
	if _, err := io.ReadFull(w.fr, out); err != nil {
		return nil, fmt.Errorf("%w: inflating object at %d: %v", ErrCorrupt, e.data, err)
	}
	return out, nil
}

// resolve returns the content of the object at pos, decoding its delta
// chain as far as the cache does not hold it.
func (w *walker) resolve(pos int32) ([]byte, error) {
	var chain []int32
	for p, depth := pos, 0; ; p, depth = w.bases[p], depth+1 {
		if data, ok := w.cache[p]; ok {
			return w.apply(data, p, chain)
		}
		if depth > maxDepth {
			return nil, fmt.Errorf("%w: delta chain too long", ErrCorrupt)
		}
		if w.bases[p] < 0 {
			e := w.entries[p]
			buf, err := w.inflate(e, e.size)
			if err != nil {
				return nil, err
			}
			var data []byte
			if alloc := w.allocator(p); alloc != nil {
				data = alloc(e.size)
			} else {
				data = make([]byte, e.size)
			}
			copy(data, buf)
			w.keep(p, data)
			return w.apply(data, p, chain)
		}
		chain = append(chain, p)
	}
}

// apply applies the deltas of chain (outermost first) to base, the content
// of basePos, innermost first, keeping intermediate results that other
// deltas still need.
func (w *walker) apply(base []byte, basePos int32, chain []int32) ([]byte, error) {
	for i := len(chain) - 1; i >= 0; i-- {
		e := w.entries[chain[i]]
		delta, err := w.inflate(e, e.size)
		if err != nil {
			return nil, err
		}
		next, err := patch(w.allocator(chain[i]), base, delta)
		if err != nil {
			return nil, fmt.Errorf("%w (object at %d)", err, w.p.sorted[chain[i]])
		}
		if w.cache[basePos] == nil {
			w.release(basePos, base)
		}
		base, basePos = next, chain[i]
		if i > 0 {
			w.keep(chain[i], base)
		}
	}
	return base, nil
}

// allocator returns the allocator for the content of pos: the pool for a
// blob when the walk reuses blobs' memory, or nil (new memory).
func (w *walker) allocator(pos int32) func(uint64) []byte {
	if w.reuse && w.types[pos] == Blob {
		return w.get
	}
	return nil
}

// release hands the memory of data, the content of pos, back to the pool
// if the walk reuses it and nothing uses it any more.
func (w *walker) release(pos int32, data []byte) {
	if w.reuse && w.types[pos] == Blob {
		w.pool.put(data)
	}
}

// bufPool keeps buffers for reuse, by power-of-two capacity.
type bufPool struct {
	free  [maxPoolClass + 1][][]byte
	bytes int
}

const (
	minPoolClass = 12       // 4 KiB
	maxPoolClass = 24       // 16 MiB
	maxPoolBytes = 16 << 20 // kept at most
)

// get returns a buffer of length n.
func (p *bufPool) get(n uint64) []byte {
	c := max(minPoolClass, bits.Len64(n-1))
	if n == 0 || c > maxPoolClass {
		return make([]byte, n)
	}
	if k := len(p.free[c]); k > 0 {
		b := p.free[c][k-1]
		p.free[c] = p.free[c][:k-1]
		p.bytes -= cap(b)
		return b[:n]
	}
	return make([]byte, n, 1<<c)
}

// put keeps b for reuse, if it came from get and the pool has room.
func (p *bufPool) put(b []byte) {
	c := bits.Len(uint(cap(b))) - 1
	if c < minPoolClass || c > maxPoolClass || cap(b) != 1<<c || p.bytes+cap(b) > maxPoolBytes {
		return
	}
	p.free[c] = append(p.free[c], b[:0])
	p.bytes += cap(b)
}

// keep caches data as the content of pos if deltas still need it and the
// cache has room. The cache counts capacities: a pooled buffer holds up to
// twice its content.
func (w *walker) keep(pos int32, data []byte) {
	if w.children[pos] == 0 || w.cache[pos] != nil || w.cached+int64(cap(data)) > w.limit {
		return
	}
	w.cache[pos] = data
	w.cached += int64(cap(data))
}

// testHookDone, when set by a test, is called at the end of every done.
var testHookDone func(*walker)

// done records that the object at pos has been handed over: its base needs
// to be kept for one delta fewer, and it is kept itself if deltas need it.
func (w *walker) done(pos int32, data []byte) {
	if data != nil {
		w.keep(pos, data)
	}
	if b := w.bases[pos]; b >= 0 {
		w.children[b]--
		if w.children[b] == 0 {
			if data, ok := w.cache[b]; ok {
				w.cached -= int64(cap(data))
				delete(w.cache, b)
				w.release(b, data)
			}
		}
	}
	if testHookDone != nil {
		testHookDone(w)
	}
}

// deltaSize decodes one of the two sizes that start a delta.
func deltaSize(b []byte) (size uint64, n int, err error) {
	var shift uint
	for n < len(b) {
		c := b[n]
		n++
		size |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return size, n, nil
		}
		shift += 7
		if shift > 63 {
			break
		}
	}
	return 0, 0, fmt.Errorf("%w: bad delta size", ErrCorrupt)
}

// patch applies a Git delta to base, writing the result to memory from
// alloc (nil: new memory), asked for once the delta's sizes check out.
func patch(alloc func(uint64) []byte, base, delta []byte) ([]byte, error) {
	srcSize, n, err := deltaSize(delta)
	if err != nil {
		return nil, err
	}
	delta = delta[n:]
	dstSize, n, err := deltaSize(delta)
	if err != nil {
		return nil, err
	}
	delta = delta[n:]
	if srcSize != uint64(len(base)) {
		return nil, fmt.Errorf("%w: delta for a base of %d bytes applied to %d", ErrCorrupt, srcSize, len(base))
	}
	// Each byte of instructions yields at most one base's worth of output.
	if dstSize > uint64(len(delta))*uint64(max(len(base), 1)) {
		return nil, fmt.Errorf("%w: delta result size %d", ErrCorrupt, dstSize)
	}
	var out []byte
	if alloc != nil {
		out = alloc(dstSize)[:0]
	} else {
		out = make([]byte, 0, dstSize)
	}
	for i := 0; i < len(delta); {
		c := delta[i]
		i++
		switch {
		case c&0x80 != 0:
			var off, size uint64
			for bit := range 7 {
				if c&(1<<bit) == 0 {
					continue
				}
				if i >= len(delta) {
					return nil, fmt.Errorf("%w: truncated delta copy", ErrCorrupt)
				}
				if bit < 4 {
					off |= uint64(delta[i]) << (8 * bit)
				} else {
					size |= uint64(delta[i]) << (8 * (bit - 4))
				}
				i++
			}
			if size == 0 {
				size = 1 << 16
			}
			if off+size > uint64(len(base)) || uint64(len(out))+size > dstSize {
				return nil, fmt.Errorf("%w: delta copy out of range", ErrCorrupt)
			}
			out = append(out, base[off:off+size]...)
		case c != 0:
			if i+int(c) > len(delta) || uint64(len(out))+uint64(c) > dstSize {
				return nil, fmt.Errorf("%w: delta insert out of range", ErrCorrupt)
			}
			out = append(out, delta[i:i+int(c)]...)
			i += int(c)
		default:
			return nil, fmt.Errorf("%w: delta opcode 0", ErrCorrupt)
		}
	}
	if uint64(len(out)) != dstSize {
		return nil, fmt.Errorf("%w: delta made %d bytes, not %d", ErrCorrupt, len(out), dstSize)
	}
	return out, nil
}
