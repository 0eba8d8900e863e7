package device

import (
	"context"
	"sync"
	"time"

	"github.com/securedeviceaccess/sda/transport"
)

// Defaults of the timeouts of served connections.
const (
	// DefaultIdleTimeout is Config.IdleTimeout when zero: tens of seconds
	// cover a technician's pause between operations, and bound how long a
	// silent connection holds a slot when no newcomer evicts it first.
	DefaultIdleTimeout = 30 * time.Second
	// DefaultFrameTimeout is Config.FrameTimeout when zero: a request of
	// the default 2048-byte limit crosses a 9600-baud serial line in about
	// 2.2 seconds and TCP in milliseconds (seconds with retransmissions),
	// and it bounds how long a newcomer waits for a slot when every
	// connection is busy.
	DefaultFrameTimeout = 5 * time.Second
)

// connTable tracks the connections [Agent.ServeListener] serves: their
// number, whether each is idle, and which to close when a new connection
// arrives at the limit.
//
// A connection is idle while the agent waits for the first byte of its
// next request: no request in progress, none being processed, no response
// being sent. (On a Conn without the transport.FrameReceiver capability the
// agent cannot see a request begin, so the whole wait for it counts as
// idle.) When a connection arrives and every slot is taken, the table
// closes the connection idle longest, preferring one that holds no nonce
// (a technician between its nonce and its signed request holds one). When
// none is idle, it asks the oldest connection to give up its slot at its
// next idle moment, which comes within twice the frame timeout (the rest of
// a request, then its response) plus the time to process one request; the
// newcomer waits until then.
type connTable struct {
	max         int
	idleTimeout time.Duration // zero: none

	mu      sync.Mutex
	n       int      // connections holding a slot
	freeing int      // of those, connections closed or asked to yield
	idle    slotList // idle connections, longest idle first
	all     slotList // all connections, oldest first
	freed   chan struct{}
}

// slot is one connection's place in the table.
type slot struct {
	t     *connTable
	conn  transport.Conn
	src   *source
	timer *time.Timer // the idle timeout; nil when none

	// Guarded by t.mu.
	isIdle              bool
	idleSince           time.Time
	yield               bool       // close at the next idle moment
	reason              DropReason // why the table closed the connection
	idleLinks, allLinks links
}

func newConnTable(max int, idleTimeout time.Duration) *connTable {
	return &connTable{max: max, idleTimeout: idleTimeout, freed: make(chan struct{}, 1)}
}

// admit waits until the table can serve s, freeing a slot if it must, and
// enters s as idle. It returns ctx.Err() when ctx ends first.
func (t *connTable) admit(ctx context.Context, s *slot) error {
	s.t = t
	t.mu.Lock()
	for t.n >= t.max {
		var victim transport.Conn
		if t.n-t.freeing >= t.max {
			victim = t.freeOneLocked()
		}
		t.mu.Unlock()
		if victim != nil {
			_ = victim.Close()
		}
		select {
		case <-t.freed:
		case <-ctx.Done():
			return ctx.Err()
		}
		t.mu.Lock()
	}
	if t.freeing > 0 {
		// A slot freed otherwise than by the connection asked to yield:
		// nobody waits for that one now.
		for y := t.all.head; y != nil; y = y.allLinks.next {
			if y.yield && y.reason == DropNone {
				y.yield = false
				t.freeing--
			}
		}
	}
	t.n++
	t.all.pushBack(s, (*slot).allL)
	s.isIdle, s.idleSince = true, time.Now()
	t.idle.pushBack(s, (*slot).idleL)
	if t.idleTimeout > 0 {
		s.timer = time.AfterFunc(t.idleTimeout, s.idleExpired)
	}
	t.mu.Unlock()
	return nil
}

// freeOneLocked closes the idle connection idle longest (preferring one
// holding no nonce) and returns it for the caller to close outside the
// lock, or, when none is idle, asks the oldest connection to yield and
// returns nil. The caller holds mu.
func (t *connTable) freeOneLocked() transport.Conn {
	var victim *slot
	for s := t.idle.head; s != nil; s = s.idleLinks.next {
		if s.src.held.Load() == 0 {
			victim = s
			break
		}
	}
	if victim == nil {
		victim = t.idle.head
	}
	if victim != nil {
		t.dropLocked(victim, DropEvicted)
		return victim.conn
	}
	for s := t.all.head; s != nil; s = s.allLinks.next {
		if s.reason == DropNone && !s.yield {
			s.yield = true
			t.freeing++
			return nil
		}
	}
	return nil
}

// dropLocked marks s closed by the table for reason. The caller holds mu
// and closes s.conn after releasing it.
func (t *connTable) dropLocked(s *slot, reason DropReason) {
	s.reason = reason
	if s.isIdle {
		s.isIdle = false
		t.idle.remove(s, (*slot).idleL)
	}
	if !s.yield {
		t.freeing++
	}
}

// busy marks s as receiving or processing a request.
func (s *slot) busy() {
	t := s.t
	t.mu.Lock()
	if s.isIdle {
		s.isIdle = false
		t.idle.remove(s, (*slot).idleL)
	}
	t.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
	}
}

// idle marks s as waiting for its next request, or closes it if it was
// asked to yield its slot.
func (s *slot) idle() {
	t := s.t
	t.mu.Lock()
	switch {
	case s.reason != DropNone:
		t.mu.Unlock()
		return
	case s.yield:
		t.dropLocked(s, DropEvicted)
		t.mu.Unlock()
		_ = s.conn.Close()
		return
	}
	s.isIdle, s.idleSince = true, time.Now()
	t.idle.pushBack(s, (*slot).idleL)
	t.mu.Unlock()
	if s.timer != nil {
		s.timer.Reset(t.idleTimeout)
	}
}

// idleExpired closes s if it is still idle when its idle timeout fires.
func (s *slot) idleExpired() {
	t := s.t
	t.mu.Lock()
	if !s.isIdle || time.Since(s.idleSince) < t.idleTimeout {
		// A request began meanwhile (and maybe ended: then the timer,
		// reset, fires again).
		t.mu.Unlock()
		return
	}
	t.dropLocked(s, DropIdle)
	t.mu.Unlock()
	_ = s.conn.Close()
}

// dropped returns why the table closed s, or DropNone.
func (s *slot) dropped() DropReason {
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	return s.reason
}

// leave frees the slot of s, whose connection is closed.
func (s *slot) leave() {
	t := s.t
	if s.timer != nil {
		s.timer.Stop()
	}
	t.mu.Lock()
	if s.isIdle {
		s.isIdle = false
		t.idle.remove(s, (*slot).idleL)
	}
	t.all.remove(s, (*slot).allL)
	t.n--
	if s.reason != DropNone || s.yield {
		t.freeing--
	}
	t.mu.Unlock()
	select {
	case t.freed <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// links are the neighbours of a slot in one slotList.
type links struct{ prev, next *slot }

func (s *slot) idleL() *links { return &s.idleLinks }
func (s *slot) allL() *links  { return &s.allLinks }

// slotList is an intrusive doubly linked list of slots, so that entering
// and leaving it cost no allocation.
type slotList struct{ head, tail *slot }

func (l *slotList) pushBack(s *slot, at func(*slot) *links) {
	at(s).prev, at(s).next = l.tail, nil
	if l.tail != nil {
		at(l.tail).next = s
	} else {
		l.head = s
	}
	l.tail = s
}

func (l *slotList) remove(s *slot, at func(*slot) *links) {
	ln := at(s)
	if ln.prev != nil {
		at(ln.prev).next = ln.next
	} else {
		l.head = ln.next
	}
	if ln.next != nil {
		at(ln.next).prev = ln.prev
	} else {
		l.tail = ln.prev
	}
	ln.prev, ln.next = nil, nil
}
