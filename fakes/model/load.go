package model

import (
	"container/list"
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// errClosed fails requests that were waiting or running when Close was called.
var errClosed = errors.New("model server is shutting down")

// scheduler hands out running slots. Requests queue in arrival order; a pass
// over the queue starts every request that fits: a free slot and, for a LoRA
// request, its adapter already running or room for one more adapter. A LoRA
// request that does not fit stays in the queue and later ones may pass it, as
// vLLM's scheduler does; base-model requests are strictly first in, first out.
type scheduler struct {
	mu       sync.Mutex
	maxRun   int
	maxLoRAs int
	now      func() time.Time

	queue    list.List      // of *ticket, oldest first
	running  int            // requests holding a slot
	loraRun  map[string]int // adapter → running requests that use it
	kvTokens int            // tokens held by running requests
	changed  time.Time      // last change of the running or waiting sets
	closed   bool
}

// ticket is one request's place in the scheduler.
type ticket struct {
	lora     string        // adapter name, "" for the base model
	tokens   int           // tokens held in the KV cache while running
	ready    chan struct{} // closed when granted a slot or failed
	err      error         // why it failed; set before ready is closed
	elem     *list.Element // place in the queue while waiting
	granted  bool
	released bool
}

func newScheduler(maxRun, maxLoRAs int, now func() time.Time) *scheduler {
	return &scheduler{maxRun: maxRun, maxLoRAs: maxLoRAs, now: now, loraRun: map[string]int{}, changed: now()}
}

// acquire waits for a running slot for a request that holds promptTokens in
// the KV cache. It returns at once with ctx's error when ctx ends first (the
// queue place is given up) and with errClosed when the scheduler closes.
// The caller must release the ticket.
func (s *scheduler) acquire(ctx context.Context, lora string, promptTokens int) (*ticket, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errClosed
	}
	t := &ticket{lora: lora, tokens: promptTokens, ready: make(chan struct{})}
	t.elem = s.queue.PushBack(t)
	s.dispatchLocked()
	s.changed = s.now()
	s.mu.Unlock()

	select {
	case <-t.ready:
		if t.err != nil {
			return nil, t.err
		}
		return t, nil
	case <-ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case t.granted:
			s.releaseLocked(t)
		case t.elem != nil:
			s.queue.Remove(t.elem)
			t.elem = nil
			s.dispatchLocked()
			s.changed = s.now()
		}
		return nil, ctx.Err()
	}
}

// dispatchLocked starts every queued request that fits.
func (s *scheduler) dispatchLocked() {
	for e := s.queue.Front(); e != nil && s.running < s.maxRun; {
		next := e.Next()
		t, _ := e.Value.(*ticket)
		if t != nil && s.fitsLocked(t.lora) {
			s.queue.Remove(e)
			t.elem = nil
			t.granted = true
			s.running++
			if t.lora != "" {
				s.loraRun[t.lora]++
			}
			s.kvTokens += t.tokens
			close(t.ready)
		}
		e = next
	}
}

func (s *scheduler) fitsLocked(lora string) bool {
	return lora == "" || s.loraRun[lora] > 0 || len(s.loraRun) < s.maxLoRAs
}

// release gives the slot back; calling it twice is harmless.
func (s *scheduler) release(t *ticket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked(t)
}

func (s *scheduler) releaseLocked(t *ticket) {
	if t.released || !t.granted {
		return
	}
	t.released = true
	s.running--
	if t.lora != "" {
		if s.loraRun[t.lora]--; s.loraRun[t.lora] <= 0 {
			delete(s.loraRun, t.lora)
		}
	}
	s.kvTokens -= t.tokens
	s.dispatchLocked()
	s.changed = s.now()
}

// grow records that a running request now holds n more tokens.
func (s *scheduler) grow(t *ticket, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.released {
		return
	}
	t.tokens += n
	s.kvTokens += n
}

// close fails every waiting request and refuses new ones.
func (s *scheduler) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	for e := s.queue.Front(); e != nil; e = s.queue.Front() {
		s.queue.Remove(e)
		if t, _ := e.Value.(*ticket); t != nil {
			t.elem = nil
			t.err = errClosed
			close(t.ready)
		}
	}
	s.changed = s.now()
}

// loadState is what the metrics report about the scheduler at one instant.
type loadState struct {
	running, waiting int
	kvTokens         int
	runningLoRAs     []string // sorted
	waitingLoRAs     []string // sorted, distinct
	changed          time.Time
}

func (s *scheduler) state() loadState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := loadState{running: s.running, waiting: s.queue.Len(), kvTokens: s.kvTokens, changed: s.changed}
	for name := range s.loraRun {
		st.runningLoRAs = append(st.runningLoRAs, name)
	}
	for e := s.queue.Front(); e != nil; e = e.Next() {
		if t, _ := e.Value.(*ticket); t != nil && t.lora != "" && !slices.Contains(st.waitingLoRAs, t.lora) {
			st.waitingLoRAs = append(st.waitingLoRAs, t.lora)
		}
	}
	slices.Sort(st.runningLoRAs)
	slices.Sort(st.waitingLoRAs)
	return st
}
