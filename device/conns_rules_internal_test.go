package device

import (
	"testing"
	"time"
)

// One newcomer closes one connection, even when it is woken before the
// connection it closed has left (here by a wake-up left over from an
// earlier departure).
func TestConnTableNewcomerClosesOneConnection(t *testing.T) {
	table := newConnTable(2, 0)
	enter(t, table).leave() // nobody waits: its wake-up stays pending
	a, b := enter(t, table), enter(t, table)
	_, admitted := admitAsync(table)
	waitClosed(t, a)                             // idle longest
	deadline := time.Now().Add(10 * time.Second) // bounds a hang; asserts nothing about time
	for len(table.freed) > 0 {                   // the newcomer took the wake-up
		if time.Now().After(deadline) {
			t.Fatal("the pending wake-up was not taken")
		}
		time.Sleep(time.Millisecond)
	}
	waiting(t, admitted)
	if b.closed() || b.dropped() != DropNone {
		t.Fatal("a second connection was closed for one newcomer")
	}
	a.leave()
	if err := <-admitted; err != nil {
		t.Fatal(err)
	}
}

// Once a yield is cancelled (another slot freed first), the table's count
// of slots being freed is right again: the next newcomer at the limit
// closes an idle connection at once.
func TestConnTableCountsRightAfterACancelledYield(t *testing.T) {
	table := newConnTable(2, 0)
	old, other := enter(t, table), enter(t, table)
	old.busy()
	other.busy()
	c, admitted := admitAsync(table)
	waiting(t, admitted)
	other.leave()
	if err := <-admitted; err != nil {
		t.Fatal(err)
	}
	old.idle()
	if table.freeing != 0 {
		t.Fatalf("%d slots being freed, want 0", table.freeing)
	}
	// c and old are idle, c the longest: a newcomer closes it at once.
	_, admitted = admitAsync(table)
	waitClosed(t, c)
	if old.closed() {
		t.Fatal("the other idle connection was closed")
	}
	c.leave()
	if err := <-admitted; err != nil {
		t.Fatal(err)
	}
}
