package state

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// bbolt trusts the pages of its file: a cycle in its B-tree makes a cursor
// loop for ever, a page id past the end makes it read outside its memory
// map, and a damaged free list corrupts the next write. checkStructure walks
// the file the way bbolt will — meta pages, every page of every bucket, the
// free list — with bounds and a visited set, so that a file it accepts is one
// bbolt can read without looping or faulting. It reads with ReadAt, never
// through a memory map, and never writes.
//
// The layout is bbolt v1.4/v1.5's (go.etcd.io/bbolt/internal/common): native
// byte order, a 16-byte page header {id u64, flags u16, count u16, overflow
// u32}, 16-byte branch elements {pos u32, ksize u32, pgid u64} and leaf
// elements {flags u32, pos u32, ksize u32, vsize u32}, and a meta page
// {magic, version, pageSize, flags u32; root {pgid, sequence u64}; freelist,
// pgid, txid, checksum u64} whose checksum is FNV-64a of the bytes before it.

const (
	boltMagic          = 0xED0CDAED
	boltVersion        = 2
	boltHeaderSize     = 16
	boltElementSize    = 16
	boltBranchFlag     = 0x01
	boltLeafFlag       = 0x02
	boltFreelistFlag   = 0x10
	boltBucketLeafFlag = 0x01
	boltNoFreelist     = ^uint64(0)
	boltMaxDepth       = 64
)

var ne = binary.NativeEndian

type boltMeta struct {
	pageSize uint64
	root     uint64
	freelist uint64
	pgid     uint64
	txid     uint64
}

// readMeta decodes and validates the meta page at off.
func readMeta(r io.ReaderAt, off int64) (boltMeta, bool) {
	buf := make([]byte, boltHeaderSize+64)
	if _, err := r.ReadAt(buf, off); err != nil {
		return boltMeta{}, false
	}
	m := buf[boltHeaderSize:]
	h := fnv.New64a()
	_, _ = h.Write(m[:56])
	if ne.Uint32(m[0:]) != boltMagic || ne.Uint32(m[4:]) != boltVersion || ne.Uint64(m[56:]) != h.Sum64() {
		return boltMeta{}, false
	}
	return boltMeta{
		pageSize: uint64(ne.Uint32(m[8:])),
		root:     ne.Uint64(m[16:]),
		freelist: ne.Uint64(m[32:]),
		pgid:     ne.Uint64(m[40:]),
		txid:     ne.Uint64(m[48:]),
	}, true
}

type structureChecker struct {
	r        io.ReaderAt
	pageSize uint64
	pgid     uint64
	visited  map[uint64]bool
}

// checkStructure checks the bbolt file at path; see the comment above.
func checkStructure(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	size := uint64(info.Size())

	// Choose the meta page as bbolt does: the page size from meta 0, or, if
	// meta 0 is damaged, from the first valid meta 1 at a power-of-two offset;
	// then the valid meta with the higher txid.
	var metas []boltMeta
	m0, ok0 := readMeta(f, 0)
	if ok0 {
		metas = append(metas, m0)
		if m1, ok := readMeta(f, int64(m0.pageSize)); ok && m1.pageSize == m0.pageSize {
			metas = append(metas, m1)
		}
	} else {
		for i := range 15 {
			if m1, ok := readMeta(f, int64(1024)<<i); ok && m1.pageSize == uint64(1024)<<i {
				metas = append(metas, m1)
				break
			}
		}
	}
	if len(metas) == 0 {
		return fmt.Errorf("no valid bbolt meta page")
	}
	meta := metas[0]
	if len(metas) == 2 && metas[1].txid > meta.txid {
		meta = metas[1]
	}

	switch ps := meta.pageSize; {
	case ps < 512 || ps > 1<<16 || ps&(ps-1) != 0:
		return fmt.Errorf("page size %d", ps)
	case meta.pgid < 3 || meta.pgid > size/ps:
		return fmt.Errorf("high-water page %d for a file of %d pages", meta.pgid, size/ps)
	case meta.freelist == boltNoFreelist:
		return fmt.Errorf("no free list (gatecheck always writes one)")
	}
	c := &structureChecker{r: f, pageSize: meta.pageSize, pgid: meta.pgid, visited: map[uint64]bool{0: true, 1: true}}
	if err := c.page(meta.root, 0); err != nil {
		return err
	}
	return c.freelist(meta.freelist)
}

// read returns the bytes of page id and its overflow pages, marking them
// visited.
func (c *structureChecker) read(id uint64, wantFlags uint16) ([]byte, error) {
	if id < 2 || id >= c.pgid {
		return nil, fmt.Errorf("page %d out of bounds [2, %d)", id, c.pgid)
	}
	hdr := make([]byte, boltHeaderSize)
	if _, err := c.r.ReadAt(hdr, int64(id*c.pageSize)); err != nil {
		return nil, fmt.Errorf("page %d: %v", id, err)
	}
	if got := ne.Uint64(hdr); got != id {
		return nil, fmt.Errorf("page %d claims to be page %d", id, got)
	}
	if flags := ne.Uint16(hdr[8:]); flags&wantFlags == 0 {
		return nil, fmt.Errorf("page %d has type %#x", id, flags)
	}
	overflow := uint64(ne.Uint32(hdr[12:]))
	if id+overflow >= c.pgid {
		return nil, fmt.Errorf("page %d overflows past the high-water page %d", id, c.pgid)
	}
	for p := id; p <= id+overflow; p++ {
		if c.visited[p] {
			return nil, fmt.Errorf("page %d is used twice", p)
		}
		c.visited[p] = true
	}
	buf := make([]byte, (overflow+1)*c.pageSize)
	if _, err := c.r.ReadAt(buf, int64(id*c.pageSize)); err != nil {
		return nil, fmt.Errorf("page %d: %v", id, err)
	}
	return buf, nil
}

// page checks the B-tree page id and everything below it.
func (c *structureChecker) page(id uint64, depth int) error {
	buf, err := c.read(id, boltBranchFlag|boltLeafFlag)
	if err != nil {
		return err
	}
	return c.elements(buf, id, depth)
}

// elements checks the elements of a branch or leaf page held in buf (a page
// of the file, or an inline bucket's page inside a value).
func (c *structureChecker) elements(buf []byte, id uint64, depth int) error {
	if depth > boltMaxDepth {
		return fmt.Errorf("page %d: tree deeper than %d", id, boltMaxDepth)
	}
	if len(buf) < boltHeaderSize {
		return fmt.Errorf("page %d: %d bytes", id, len(buf))
	}
	flags := ne.Uint16(buf[8:])
	count := uint64(ne.Uint16(buf[10:]))
	n := uint64(len(buf))
	if boltHeaderSize+count*boltElementSize > n {
		return fmt.Errorf("page %d: %d elements do not fit", id, count)
	}
	switch {
	case flags == boltBranchFlag:
		if count == 0 {
			return fmt.Errorf("page %d: empty branch", id)
		}
		for i := range count {
			e := boltHeaderSize + i*boltElementSize
			pos, ksize := uint64(ne.Uint32(buf[e:])), uint64(ne.Uint32(buf[e+4:]))
			if e+pos+ksize > n {
				return fmt.Errorf("page %d: branch element %d out of bounds", id, i)
			}
			if err := c.page(ne.Uint64(buf[e+8:]), depth+1); err != nil {
				return err
			}
		}
	case flags == boltLeafFlag:
		for i := range count {
			e := boltHeaderSize + i*boltElementSize
			eflags := ne.Uint32(buf[e:])
			pos, ksize, vsize := uint64(ne.Uint32(buf[e+4:])), uint64(ne.Uint32(buf[e+8:])), uint64(ne.Uint32(buf[e+12:]))
			if e+pos+ksize+vsize > n {
				return fmt.Errorf("page %d: leaf element %d out of bounds", id, i)
			}
			if eflags&boltBucketLeafFlag == 0 {
				continue
			}
			v := buf[e+pos+ksize : e+pos+ksize+vsize]
			if len(v) < 16 {
				return fmt.Errorf("page %d: bucket element %d has a %d-byte header", id, i, len(v))
			}
			if root := ne.Uint64(v); root != 0 {
				if err := c.page(root, depth+1); err != nil {
					return err
				}
			} else if err := c.elements(v[16:], id, depth+1); err != nil {
				return fmt.Errorf("inline bucket: %w", err)
			}
		}
	default:
		return fmt.Errorf("page %d has type %#x in a tree", id, flags)
	}
	return nil
}

// freelist checks the free-list page: its ids are in bounds, distinct, and
// not used by any tree.
func (c *structureChecker) freelist(id uint64) error {
	buf, err := c.read(id, boltFreelistFlag)
	if err != nil {
		return fmt.Errorf("free list: %w", err)
	}
	if ne.Uint16(buf[8:]) != boltFreelistFlag {
		return fmt.Errorf("free list: page %d has type %#x", id, ne.Uint16(buf[8:]))
	}
	start, count := uint64(boltHeaderSize), uint64(ne.Uint16(buf[10:]))
	if count == 0xFFFF {
		if len(buf) < boltHeaderSize+8 {
			return fmt.Errorf("free list: page %d too short", id)
		}
		count = ne.Uint64(buf[boltHeaderSize:])
		start += 8
	}
	if count > (uint64(len(buf))-start)/8 {
		return fmt.Errorf("free list: %d ids do not fit in page %d", count, id)
	}
	seen := make(map[uint64]bool, count)
	for i := range count {
		p := ne.Uint64(buf[start+i*8:])
		switch {
		case p < 2 || p >= c.pgid:
			return fmt.Errorf("free list: page %d out of bounds", p)
		case seen[p]:
			return fmt.Errorf("free list: page %d freed twice", p)
		case c.visited[p]:
			return fmt.Errorf("free list: page %d is free and in use", p)
		}
		seen[p] = true
	}
	return nil
}
