package scan

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/latchhq/latch/internal/gitpack"
)

// This file walks a repository's history in process for ScanHistory: git
// rev-list orders the commits and names their trees, the trees come from
// the pack files, and each commit's tree is compared with its first
// parent's the way `git log --raw --diff-merges=first-parent` compares
// them, without a second process formatting and parsing a raw diff of
// every commit.

// treeSource holds the trees of a repository's packs. The trees no pack
// holds (loose, in alternates) are read through `git cat-file --batch`.
type treeSource struct {
	g *gitRunner

	mu    sync.Mutex
	trees map[string]*tree // by binary ID
	bytes int64

	cat *catFile // started on the first miss
}

// maxTreeBytes bounds the memory the trees a treeSource keeps from the
// packs take.
var maxTreeBytes int64 = 256 << 20

// newTreeSource returns an empty treeSource with room for about n trees.
func newTreeSource(g *gitRunner, n int) *treeSource {
	return &treeSource{g: g, trees: make(map[string]*tree, n)}
}

// add keeps o if it is a tree and reports whether the bound allowed it. It
// is safe for concurrent use.
func (t *treeSource) add(o gitpack.Object) bool {
	if o.Type != gitpack.Tree {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, dup := t.trees[string(o.ID)]; dup {
		return true // in two packs
	}
	// What a tree costs besides its content: the map entry, the tree and
	// its index (about one int32 per 32 bytes).
	size := int64(len(o.Data)) + 96 + int64(len(o.Data))/8
	if t.bytes+size > maxTreeBytes {
		return false
	}
	t.trees[string(o.ID)] = &tree{data: o.Data}
	t.bytes += size
	return true
}

// drop lets go of the trees.
func (t *treeSource) drop() {
	t.mu.Lock()
	t.trees, t.bytes = map[string]*tree{}, 0
	t.mu.Unlock()
}

// errTreesFull stops reading trees that do not fit.
var errTreesFull = errors.New("scan: too many trees to keep")

// readPacks keeps the trees of packs, each pack decoded by workers
// goroutines, and reports whether they all fit in maxTreeBytes. A pack that
// cannot be read leaves its trees to git cat-file; only the context's error
// is returned.
func (t *treeSource) readPacks(ctx context.Context, packs []*gitpack.Pack, workers int) (fit bool, err error) {
	opt := gitpack.WalkOptions{Type: gitpack.Tree, Workers: workers}
	for _, p := range packs {
		err := p.Walk(opt, func(o gitpack.Object) error {
			if !t.add(o) {
				return errTreesFull
			}
			return ctx.Err()
		})
		if errors.Is(err, errTreesFull) {
			return false, nil
		}
	}
	return true, ctx.Err()
}

// tree returns the tree with binary ID id, not indexed unless it was used
// before; nil is the empty tree. It is not safe for concurrent use with itself.
func (t *treeSource) tree(ctx context.Context, id []byte) (*tree, error) {
	if id == nil {
		return &emptyTree, nil
	}
	tr, ok := t.trees[string(id)]
	if !ok {
		data, err := t.read(ctx, id)
		if err != nil {
			return nil, err
		}
		tr = &tree{data: data}
		t.trees[string(id)] = tr
	}
	return tr, nil
}

// read reads the tree with binary ID id through git cat-file.
func (t *treeSource) read(ctx context.Context, id []byte) ([]byte, error) {
	if t.cat == nil {
		c, err := t.g.startCatFile(ctx)
		if err != nil {
			return nil, err
		}
		t.cat = c
	}
	hexID := hex.EncodeToString(id)
	_, err := io.WriteString(t.cat.in, hexID+"\n")
	var typ string
	var data []byte
	if err == nil {
		typ, data, err = readBatchObject(t.cat.out, hexID)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err() // the cause, not the process it killed
		}
		return nil, fmt.Errorf("scan: git cat-file: %w: %s", err, strings.TrimSpace(t.cat.stderr.String()))
	}
	if typ != "tree" {
		return nil, fmt.Errorf("scan: object %s is a %s, not a tree", hexID, cmp.Or(typ, "missing object"))
	}
	return data, nil
}

// close stops the cat-file process, if one was started.
func (t *treeSource) close() {
	if t.cat != nil {
		t.cat.in.Close()
		t.cat.cmd.Wait()
		t.cat = nil
	}
}

// replacements reports whether git replaces objects in this repository
// (`git replace`): refs under refs/replace/, or GIT_REPLACE_REF_BASE, and
// GIT_NO_REPLACE_OBJECTS unset.
func (g *gitRunner) replacements(ctx context.Context) (bool, error) {
	if _, off := os.LookupEnv("GIT_NO_REPLACE_OBJECTS"); off {
		return false, nil
	}
	base := cmp.Or(os.Getenv("GIT_REPLACE_REF_BASE"), "refs/replace/")
	out, err := g.output(ctx, "for-each-ref", "--count=1", "--format=%(refname)", "--", base)
	if err != nil {
		return false, fmt.Errorf("scan: listing replacement refs: %w", err)
	}
	return len(bytes.TrimSpace(out)) > 0, nil
}

// revision is a commit as the history walk needs it: its ID, its tree's and
// its first parent's (nil for a root commit), in binary.
type revision struct {
	id, tree, parent []byte
}

// revisions lists the commits `git log --all --date-order --reverse` shows,
// in that order.
func (g *gitRunner) revisions(ctx context.Context) ([]revision, error) {
	// rev-list prints "commit <id>" before each formatted line (unless
	// asked not to, since Git 2.33): those lines are skipped.
	out, err := g.output(ctx, "rev-list", "--all", "--date-order", "--reverse", "--format=%H %T %P")
	if err != nil {
		return nil, fmt.Errorf("scan: listing commits: %w", err)
	}
	var revs []revision
	for line := range bytes.Lines(out) {
		f := bytes.Fields(line)
		if len(f) == 0 || len(f) == 2 && string(f[0]) == "commit" {
			continue
		}
		var r revision
		var err error
		if len(f) < 2 {
			err = errors.New("too few fields")
		}
		for i, dst := range []*[]byte{&r.id, &r.tree, &r.parent} {
			if err == nil && i < len(f) {
				*dst, err = hex.DecodeString(string(f[i]))
			}
		}
		if err != nil {
			return nil, fmt.Errorf("scan: unexpected git rev-list output %q", bytes.TrimSpace(line))
		}
		revs = append(revs, r)
	}
	return revs, nil
}

// walkHistory calls blob for each regular-file blob of revs' trees, in
// order, with the commit and path that first introduced it, as walkLog does
// for `git log --raw`, and returns the number of blobs blob declined
// (errSkip). Like git log, it compares each commit's tree with its first
// parent's and names the blobs the comparison shows as added or changed,
// each the first time: since a commit's parents come before it, the first
// commit to show a blob is the first to hold it.
func walkHistory(ctx context.Context, src *treeSource, revs []revision, blob func(blobJob) error) (skipped int64, err error) {
	trees := map[string][]byte{} // each commit's tree ID, by commit ID, for parents' lookups
	d := treeDiff{ctx: ctx, src: src, seen: map[string]bool{}}
	var cur *commit
	d.emit = func(path, id []byte) error {
		d.seq++
		j := blobJob{id: hex.EncodeToString(id), bin: string(id), path: string(path), c: cur, seq: d.seq}
		switch err := blob(j); {
		case errors.Is(err, errSkip):
			skipped++
		case err != nil:
			return err
		}
		return nil
	}
	for _, r := range revs {
		if err := ctx.Err(); err != nil {
			return skipped, err
		}
		trees[string(r.id)] = r.tree
		var parent []byte
		if r.parent != nil {
			var ok bool
			if parent, ok = trees[string(r.parent)]; !ok {
				// rev-list lists parents first; should one not be
				// listed, the commit is taken whole.
				parent = nil
			}
		}
		cur = &commit{hash: hex.EncodeToString(r.id)}
		if err := d.diff(parent, r.tree); err != nil {
			return skipped, err
		}
	}
	return skipped, nil
}

// treeDiff names the regular files of a tree that an older tree does not
// hold at the same path with the same content, depth first in the order the
// tree stores them, leaving out blobs it named before and all-zero IDs.
type treeDiff struct {
	ctx  context.Context
	src  *treeSource
	seen map[string]bool // blobs named, by binary ID
	seq  int64
	path []byte
	emit func(path, id []byte) error
}

// diff compares the trees with binary IDs old (nil for none) and new, at
// path d.path.
//
// Two versions of a tree usually differ in an entry or two. The entries
// within the bytes both trees start with, or end with, are the same in
// both, and are skipped without being compared one by one.
func (d *treeDiff) diff(old, new []byte) error {
	if old != nil && bytes.Equal(old, new) {
		return nil
	}
	ot, err := d.src.tree(d.ctx, old)
	if err != nil {
		return err
	}
	nt, err := d.src.tree(d.ctx, new)
	if err != nil {
		return err
	}
	hs := len(new)
	from, nto, oto, err := ot.same(nt, len(new))
	if err != nil {
		return fmt.Errorf("%w (tree %x)", err, new)
	}
	prefix := len(d.path)
	oi := from
	var oe treeEntry
	if oi < oto {
		if oe, err = ot.entry(oi, hs); err != nil {
			return fmt.Errorf("%w (tree %x)", err, old)
		}
	}
	for ni := from; ni < nto; ni++ {
		// Most entries in between are the same too, at the same place.
		if oi < oto && bytes.Equal(ot.raw(oi), nt.raw(ni)) {
			if oi++; oi < oto {
				if oe, err = ot.entry(oi, hs); err != nil {
					return fmt.Errorf("%w (tree %x)", err, old)
				}
			}
			continue
		}
		ne, err := nt.entry(ni, hs)
		if err != nil {
			return fmt.Errorf("%w (tree %x)", err, new)
		}
		for oi < oto && compareEntries(oe, ne) < 0 {
			if oi++; oi < oto {
				if oe, err = ot.entry(oi, hs); err != nil {
					return fmt.Errorf("%w (tree %x)", err, old)
				}
			}
		}
		match := oi < oto && compareEntries(oe, ne) == 0
		switch {
		case ne.isTree():
			var oldSub []byte
			if match && oe.isTree() {
				oldSub = oe.id
			}
			if oldSub != nil && bytes.Equal(oldSub, ne.id) {
				continue
			}
			d.path = append(append(d.path[:prefix], ne.name...), '/')
			if err := d.diff(oldSub, ne.id); err != nil {
				return err
			}
		case ne.isRegular():
			if match && oe.isRegular() && bytes.Equal(oe.id, ne.id) || d.seen[string(ne.id)] || allZero(ne.id) {
				continue
			}
			d.seen[string(ne.id)] = true
			d.path = append(d.path[:prefix], ne.name...)
			if err := d.emit(d.path, ne.id); err != nil {
				return err
			}
		}
	}
	d.path = d.path[:prefix]
	return nil
}

// tree is a tree object with the offsets of its entries.
type tree struct {
	data []byte
	offs []int32 // where each entry starts, then len(data); nil until same indexes it
}

var emptyTree = tree{offs: []int32{0}}

var errMalformedTree = errors.New("scan: malformed tree object")

// len returns the number of entries.
func (t *tree) len() int { return len(t.offs) - 1 }

// maxTreeSize bounds the size of a tree object, whose offsets are int32s.
const maxTreeSize = math.MaxInt32

// raw returns entry i as stored.
func (t *tree) raw(i int) []byte { return t.data[t.offs[i]:t.offs[i+1]] }

// entry parses entry i.
func (t *tree) entry(i, hashSize int) (treeEntry, error) {
	d := t.raw(i)
	var e treeEntry
	j := 0
	// Any number of octal digits, as Git reads them.
	for ; j < len(d) && d[j] >= '0' && d[j] <= '7'; j++ {
		e.mode = e.mode<<3 | uint32(d[j]-'0')
	}
	name := len(d) - hashSize - 1 // where the name ends
	if j == 0 || d[j] != ' ' || j+1 >= name {
		return e, errMalformedTree
	}
	e.name, e.id = d[j+1:name], d[name+1:]
	return e, nil
}

// same compares t, an older version of a tree, with n, indexing n if it
// is not yet: the entries of both before from are the same, and so are n's
// from nto on and t's from oto on. Only n's entries from from to nto can
// differ from t's from from to oto. t must be indexed.
//
// Entries within a common prefix of the bytes are the same, at the same
// offsets: both trees parse it alike. So are those within a common suffix,
// if an entry of n starts where one of t's does, counting from the end.
// Indexing n reads only the entries in between.
func (t *tree) same(n *tree, hashSize int) (from, nto, oto int, err error) {
	if len(n.data) > maxTreeSize {
		return 0, 0, 0, errMalformedTree
	}
	p := int32(commonPrefix(t.data, n.data))
	from = sort.Search(t.len(), func(i int) bool { return t.offs[i+1] > p })
	start := int(t.offs[from])
	s := commonSuffix(t.data[start:], n.data[start:])
	jo := sort.Search(t.len(), func(i int) bool { return int(t.offs[i]) >= len(t.data)-s })
	shift := int32(len(n.data) - len(t.data))
	q := int32(-1) // where t's entry jo starts in n
	if jo < t.len() {
		q = t.offs[jo] + shift
	}
	if n.offs == nil {
		middle := len(n.data) - start
		if q >= 0 {
			middle = int(q) - start
		}
		offs := make([]int32, from, from+middle/32+t.len()-jo+2)
		copy(offs, t.offs[:from])
		i := start
		for i < len(n.data) && i != int(q) {
			offs = append(offs, int32(i))
			nul := bytes.IndexByte(n.data[i:], 0)
			if nul < 3 || i+nul+1+hashSize > len(n.data) {
				return 0, 0, 0, errMalformedTree
			}
			i += nul + 1 + hashSize
		}
		if i == int(q) {
			for _, o := range t.offs[jo:t.len()] {
				offs = append(offs, o+shift)
			}
		}
		n.offs = append(offs, int32(len(n.data)))
	}
	nto, oto = n.len(), t.len()
	if q >= 0 {
		if jn, ok := slices.BinarySearch(n.offs[:n.len()], q); ok {
			nto, oto = jn, jo
		}
	}
	return from, nto, oto, nil
}

// commonPrefix returns the length of the longest common prefix of a and b.
func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for ; i+8 <= n; i += 8 {
		if x := binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:]); x != 0 {
			return i + bits.TrailingZeros64(x)/8
		}
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

// commonSuffix returns the length of the longest common suffix of a and b.
func commonSuffix(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for ; i+8 <= n; i += 8 {
		x := binary.LittleEndian.Uint64(a[len(a)-i-8:]) ^ binary.LittleEndian.Uint64(b[len(b)-i-8:])
		if x != 0 {
			return i + bits.LeadingZeros64(x)/8
		}
	}
	for i < n && a[len(a)-i-1] == b[len(b)-i-1] {
		i++
	}
	return i
}

// treeEntry is one entry of a tree object.
type treeEntry struct {
	mode uint32
	name []byte
	id   []byte
}

func (e treeEntry) isTree() bool { return e.mode&0o170000 == 0o040000 }

func (e treeEntry) isRegular() bool { return e.mode&0o170000 == 0o100000 }

// compareEntries orders tree entries as Git sorts them: by name, a tree's
// name compared as if it ended in '/'.
func compareEntries(a, b treeEntry) int {
	n := min(len(a.name), len(b.name))
	if c := bytes.Compare(a.name[:n], b.name[:n]); c != 0 {
		return c
	}
	return cmp.Compare(a.charAt(n), b.charAt(n))
}

// charAt returns the byte at i of the entry's name, '/' just past the end
// of a tree's name, or 0.
func (e treeEntry) charAt(i int) byte {
	switch {
	case i < len(e.name):
		return e.name[i]
	case e.isTree():
		return '/'
	}
	return 0
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// fillAuthors sets the author, e-mail and date of the findings' commits not
// known yet, asking git once for all of them (the in-process history walk
// names commits only).
func (g *gitRunner) fillAuthors(ctx context.Context, fs []Finding) error {
	var ids []string
	seen := map[string]bool{}
	for _, f := range fs {
		// Commits named by git log come with their author.
		if o := f.Origin; o != nil && o.Date.IsZero() && !seen[o.Commit] {
			seen[o.Commit] = true
			ids = append(ids, o.Commit)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	cmd := g.command(ctx, "log", "--no-walk=unsorted", "--stdin", "--no-color", "--no-show-signature",
		"--encoding=UTF-8", "-z", "--format=%H%x00%an%x00%ae%x00%aI")
	cmd.Stdin = strings.NewReader(strings.Join(ids, "\n") + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("scan: git log: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	fields := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if len(fields)%4 != 0 {
		return fmt.Errorf("scan: unexpected git log output for %d commits", len(ids))
	}
	authors := map[string][]string{}
	for i := 0; i < len(fields); i += 4 {
		authors[fields[i]] = fields[i+1 : i+4]
	}
	for _, f := range fs {
		if o := f.Origin; o != nil && seen[o.Commit] {
			a, ok := authors[o.Commit]
			if !ok {
				return fmt.Errorf("scan: git log did not show commit %s", o.Commit)
			}
			o.Author, o.Email = a[0], a[1]
			o.Date, _ = time.Parse(time.RFC3339, a[2])
		}
	}
	return nil
}
