package epp

import (
	"container/list"
	"encoding/binary"
	"hash/fnv"
	"sync"
)

// Prefix-cache scoring, after GIE's prefix-cache-scorer: the prompt is cut
// into blocks of about 16 tokens (64 characters at ~4 characters a token),
// each block hashed together with the hash of the block before it (so a block
// matches only with the same prefix), the first one with the model name. The
// scorer counts the leading blocks an endpoint was sent before.
const (
	prefixBlockChars  = 64
	prefixMaxBlocks   = 256   // blocks considered per prompt (GIE's maxPrefixBlocksToMatch)
	prefixLRUCapacity = 31250 // blocks remembered per endpoint (GIE's lruCapacityPerServer)
)

// prefixBlocks returns the chained hashes of the prompt's full blocks.
func prefixBlocks(model, prompt string) []uint64 {
	n := min(len(prompt)/prefixBlockChars, prefixMaxBlocks)
	if n == 0 {
		return nil
	}
	out := make([]uint64, n)
	h := fnv.New64a()
	_, _ = h.Write([]byte(model))
	prev := h.Sum64()
	var buf [8]byte
	for i := range n {
		h.Reset()
		binary.LittleEndian.PutUint64(buf[:], prev)
		_, _ = h.Write(buf[:])
		_, _ = h.Write([]byte(prompt[i*prefixBlockChars : (i+1)*prefixBlockChars]))
		prev = h.Sum64()
		out[i] = prev
	}
	return out
}

// prefixLRU remembers the block hashes last sent to one endpoint.
type prefixLRU struct {
	mu    sync.Mutex
	limit int
	order *list.List // of uint64, most recent first
	index map[uint64]*list.Element
}

func newPrefixLRU(limit int) *prefixLRU {
	return &prefixLRU{limit: limit, order: list.New(), index: map[uint64]*list.Element{}}
}

// matched counts the leading blocks the endpoint has seen.
func (l *prefixLRU) matched(blocks []uint64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, b := range blocks {
		if _, ok := l.index[b]; !ok {
			return i
		}
	}
	return len(blocks)
}

// add records blocks as the most recently sent, evicting the oldest.
func (l *prefixLRU) add(blocks []uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range blocks {
		if e, ok := l.index[b]; ok {
			l.order.MoveToFront(e)
			continue
		}
		l.index[b] = l.order.PushFront(b)
		if l.order.Len() > l.limit {
			old := l.order.Back()
			l.order.Remove(old)
			delete(l.index, old.Value.(uint64))
		}
	}
}
