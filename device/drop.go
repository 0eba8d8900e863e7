package device

import (
	"context"
	"fmt"
	"log/slog"
	"net"
)

// DropReason says why the agent closed a connection of its own accord.
type DropReason uint8

// Drop reasons.
const (
	DropNone          DropReason = iota // not dropped
	DropIdle                            // idle longer than Config.IdleTimeout
	DropFrameTimeout                    // a request begun but not complete within Config.FrameTimeout
	DropSendTimeout                     // a response not taken by the peer within Config.FrameTimeout
	DropEvicted                         // closed to serve a new connection at the connection limit
	DropReceiveErrors                   // too many unreadable messages in a row
)

var dropNames = [...]string{
	DropNone: "none", DropIdle: "idle-timeout", DropFrameTimeout: "frame-timeout",
	DropSendTimeout: "send-timeout", DropEvicted: "evicted", DropReceiveErrors: "receive-errors",
}

// String names the reason as the audit log does.
func (r DropReason) String() string {
	if int(r) < len(dropNames) {
		return dropNames[r]
	}
	return fmt.Sprintf("DropReason(%d)", uint8(r))
}

// Drop is the audit record of a connection the agent closed of its own
// accord ([Agent.Serve], [Agent.ServeListener]): an idle one, a slow one, one
// evicted for a newcomer, one sending only garbage. Connections the peer
// closes, and those ended by the serving context, are not drops.
type Drop struct {
	Reason DropReason
	// Err matches ErrIdleTimeout, transport.ErrFrameTimeout,
	// context.DeadlineExceeded (a send timeout), ErrEvicted or the last
	// receive error, by Reason.
	Err error
	// Remote is the peer's address when the transport tells it, or nil.
	Remote net.Addr
	// Requests is the number of requests answered on the connection.
	Requests int
}

// recordDrop sends d to the hook and the audit log, at Warn.
func (a *Agent) recordDrop(ctx context.Context, d *Drop) {
	if a.onDrop != nil {
		func() {
			defer func() { _ = recover() }()
			a.onDrop(*d)
		}()
	}
	if a.log == nil || !a.log.Enabled(ctx, slog.LevelWarn) {
		return
	}
	attrs := make([]slog.Attr, 0, 4)
	attrs = append(attrs, slog.String("reason", d.Reason.String()), slog.Int("requests", d.Requests))
	if d.Remote != nil {
		attrs = append(attrs, slog.String("remote", d.Remote.String()))
	}
	if d.Err != nil {
		attrs = append(attrs, slog.String("error", d.Err.Error()))
	}
	a.log.LogAttrs(ctx, slog.LevelWarn, "sda: connection dropped", attrs...)
}
