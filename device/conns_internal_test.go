package device

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/transport"
)

// tableConn is one connection entered in a connTable under test; peer is
// the other end of its pipe.
type tableConn struct {
	*slot
	peer transport.Conn
}

// closed reports whether the table closed the connection.
func (c tableConn) closed() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	_, err := c.peer.Receive(ctx)
	return err != nil && !errors.Is(err, context.DeadlineExceeded)
}

func newTableConn() tableConn {
	a, b := transport.Pipe()
	return tableConn{slot: &slot{conn: a, src: &source{}}, peer: b}
}

// enter admits a new connection to t, which must have room.
func enter(t *testing.T, table *connTable) tableConn {
	t.Helper()
	c := newTableConn()
	if err := table.admit(context.Background(), c.slot); err != nil {
		t.Fatal(err)
	}
	return c
}

// admitAsync admits a new connection in the background.
func admitAsync(table *connTable) (tableConn, <-chan error) {
	c := newTableConn()
	ch := make(chan error, 1)
	go func() { ch <- table.admit(context.Background(), c.slot) }()
	return c, ch
}

// waiting asserts that an admission has not completed.
func waiting(t *testing.T, admitted <-chan error) {
	t.Helper()
	select {
	case err := <-admitted:
		t.Fatalf("admitted (%v) while it should wait", err)
	case <-time.After(20 * time.Millisecond):
	}
}

func TestConnTableEvictsLongestIdleWithoutNonce(t *testing.T) {
	table := newConnTable(3, 0)
	a, b, c := enter(t, table), enter(t, table), enter(t, table)
	a.src.held.Store(1) // a technician between its nonce and its request
	// Idle order: a, b, c. b is idle longest among those without a nonce.
	d, admitted := admitAsync(table)
	waitClosed(t, b)
	if r := b.dropped(); r != DropEvicted {
		t.Fatalf("victim's reason %v", r)
	}
	if a.closed() || c.closed() {
		t.Fatal("another connection was closed")
	}
	waiting(t, admitted) // until the victim's slot is free
	b.leave()
	if err := <-admitted; err != nil {
		t.Fatal(err)
	}
	// Now every idle connection holds a nonce: the longest idle goes.
	c.src.held.Store(1)
	d.src.held.Store(1)
	_, admitted = admitAsync(table)
	waitClosed(t, a)
	a.leave()
	if err := <-admitted; err != nil {
		t.Fatal(err)
	}
}

func TestConnTableOldestBusyYields(t *testing.T) {
	table := newConnTable(2, 0)
	old, young := enter(t, table), enter(t, table)
	old.busy()
	young.busy()
	_, admitted := admitAsync(table)
	waiting(t, admitted)
	// The young connection finishing a request (a technician between its
	// nonce and its signed request) keeps its slot.
	young.idle()
	waiting(t, admitted)
	if young.closed() {
		t.Fatal("the young connection was closed")
	}
	young.busy()
	// The oldest gives up its slot at its next idle moment.
	old.idle()
	waitClosed(t, old)
	if r := old.dropped(); r != DropEvicted {
		t.Fatalf("reason %v", r)
	}
	old.leave()
	if err := <-admitted; err != nil {
		t.Fatal(err)
	}
}

func TestConnTableYieldCancelledWhenAnotherSlotFrees(t *testing.T) {
	table := newConnTable(2, 0)
	old, other := enter(t, table), enter(t, table)
	old.busy()
	other.busy()
	_, admitted := admitAsync(table)
	waiting(t, admitted)
	other.leave() // its peer left, say
	if err := <-admitted; err != nil {
		t.Fatal(err)
	}
	old.idle()
	if old.closed() || old.dropped() != DropNone {
		t.Fatal("the connection asked to yield was closed after the newcomer got another slot")
	}
}

func TestConnTableIdleTimeout(t *testing.T) {
	table := newConnTable(4, time.Second)
	// The active connection starts a request well before its timeout and
	// keeps busy; the idle one, admitted later, is closed.
	active := enter(t, table)
	active.busy()
	idle := enter(t, table)
	waitClosed(t, idle)
	if r := idle.dropped(); r != DropIdle {
		t.Fatalf("reason %v", r)
	}
	time.Sleep(50 * time.Millisecond) // the active one's timer, had it run, fired before
	if active.closed() {
		t.Fatal("a busy connection was closed for idleness")
	}
	idle.leave()
	active.leave()
	if table.n != 0 || table.freeing != 0 || table.all.head != nil || table.idle.head != nil {
		t.Fatalf("table not empty: n %d, freeing %d", table.n, table.freeing)
	}
}

// waitClosed waits until the table has closed c.
func waitClosed(t *testing.T, c tableConn) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second) // bounds a hang; asserts nothing about time
	for !c.closed() {
		if time.Now().After(deadline) {
			t.Fatal("connection not closed")
		}
	}
}
