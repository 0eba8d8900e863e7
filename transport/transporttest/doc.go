// Package transporttest injects faults into transport connections, so that
// tests of technician apps and devices can check how the layers above behave
// when messages or packets are dropped, delayed, duplicated, corrupted,
// truncated or reordered. A test wraps one end of a link with [NewConn] (a
// transport.Conn) or [NewPacketConn] (a transport.PacketConn) and reads what
// was injected from Stats.
//
// Faults are drawn from a pseudo-random generator seeded by [Config.Seed],
// one stream per direction: the same seed and the same sequence of messages
// in a direction produce the same faults, whatever the other direction does.
// Every injected fault is counted ([Conn.Stats]), so a test can assert that
// the faults it asked for really happened.
//
//	c := transporttest.NewConn(conn, transporttest.Config{
//		Seed: 1,
//		Send: transporttest.Faults{Drop: 0.1, Corrupt: 0.05},
//	})
package transporttest
