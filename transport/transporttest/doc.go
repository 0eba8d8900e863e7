// Package transporttest injects faults into transport connections, so that
// tests can check how the layers above behave when messages or packets are
// dropped, delayed, duplicated, corrupted, truncated or reordered.
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
