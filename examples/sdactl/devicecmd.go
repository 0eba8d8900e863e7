package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/securedeviceaccess/sda/device"
	"github.com/securedeviceaccess/sda/token"
	"github.com/securedeviceaccess/sda/transport"
)

var deviceCmd = &command{
	name:    "device",
	summary: "run a simulated device that verifies requests and runs operations",
	details: `The device listens on TCP with the SDA serial framing (what "sdactl call
tcp://..." speaks) and verifies every request as a real device does (package
device): token signature against the -anchor keys, audience, time, proof of
possession, nonce, scope. Its first line on stdout is
  listening on tcp://<host:port>
(use -listen 127.0.0.1:0 for a free port); then one line per request:
  <time> allowed request=operation op=read-data sub=alice status="success" remote=127.0.0.1:50311
  <time> denied request=operation op=update-firmware sub=alice status="access denied" check=scope reason="..." remote=127.0.0.1:50311
(a delegated request adds "chain=" and the RFC 9679 thumbprints of every
key of its chain, the token's first, and "delegate=" and the last link's sub;
with -status-updates, a request that carried a status update adds
"update=installed update-seq=N" or "update=ignored update-reason=..."),
and one line per connection the device closes of its own accord (silent
longer than -idle-timeout, a request begun and not finished within
-frame-timeout, evicted for a newcomer at -max-conns, ...):
  <time> dropped reason=idle-timeout remote=127.0.0.1:50312 requests=0 error="..."
It stops on SIGINT or SIGTERM.

Operations: unless -no-builtin, two built-in operations are served:
  read-data   returns {"endpoint":...,"device_id":...,"temperature_c":21.5,"humidity_pct":40}
  configure   echoes its arguments: {"operation":"configure","args":[21,"fan",{"hex":"00ff"}]}
-op adds more: "-op name" echoes its arguments like configure, and
"-op name=text" answers with the fixed text.

Example:
  sdactl device -listen 127.0.0.1:7301 -anchor anchor.pem -endpoint hvac-1
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		listen := fs.String("listen", "127.0.0.1:0", "TCP `address` to listen on")
		var anchors stringList
		fs.Var(&anchors, "anchor", "trust anchor: public key PEM `file` or anchor store directory; repeatable (required)")
		endpoint := fs.String("endpoint", "", "the device's endpoint `name` (audience ep:<name>)")
		id := fs.String("id", "", "the device's id, 32 hex characters (audience id:<id>)")
		var ops stringList
		fs.Var(&ops, "op", "extra operation: `name` (echoes its arguments) or name=text (answers text); repeatable")
		noBuiltin := fs.Bool("no-builtin", false, "do not serve the built-in read-data and configure")
		maxConns := fs.Int("max-conns", device.DefaultMaxConnections, "connections served at once")
		nextNonce := fs.Bool("next-nonce", false, "v2: offer a fresh nonce in every operation response")
		updates := fs.Bool("status-updates", false, "v2: take status updates carried by requests (\"sdactl status push\") and report the ones held (response key 7)")
		idle := fs.Duration("idle-timeout", device.DefaultIdleTimeout, "close a connection silent this long")
		frame := fs.Duration("frame-timeout", device.DefaultFrameTimeout, "close a connection whose request, once begun, takes longer")
		return func(ctx context.Context, e *env, args []string) error {
			if err := wantArgs(args, 0, 0, ""); err != nil {
				return err
			}
			if len(anchors) == 0 {
				return usageErrorf("-anchor is required")
			}
			if *endpoint == "" && *id == "" {
				return usageErrorf("-endpoint or -id is required")
			}
			if *maxConns <= 0 {
				return usageErrorf("-max-conns must be positive")
			}
			if *idle <= 0 || *frame <= 0 {
				return usageErrorf("-idle-timeout and -frame-timeout must be positive")
			}
			ident := token.Identity{Endpoint: *endpoint, DeviceID: *id}
			reg, names, err := deviceOperations(ident, ops, !*noBuiltin)
			if err != nil {
				return err
			}
			store, err := e.loadAnchors(anchors)
			if err != nil {
				return err
			}
			out := &lockedWriter{w: e.stdout}
			agent, err := device.New(device.Config{
				Identity:      ident,
				Anchors:       store,
				Operations:    reg,
				NextNonce:     *nextNonce,
				StatusUpdates: *updates,
				IdleTimeout:   *idle,
				FrameTimeout:  *frame,
				OnOutcome:     func(d device.Outcome) { out.line(decisionLine(e.now(), &d)) },
				OnDrop:        func(d device.Drop) { out.line(dropLine(e.now(), &d)) },
			})
			if err != nil {
				if errors.Is(err, device.ErrConfig) {
					return usageErrorf("%v", err)
				}
				return err
			}
			l, err := transport.Listen(ctx, *listen, nil)
			if err != nil {
				return ioErr(err)
			}
			out.line("listening on tcp://" + l.Addr().String())
			e.status("device %s serving %s with %d trust anchor(s); stop with Ctrl-C", identityString(ident), strings.Join(names, ", "), store.Len())
			err = agent.ServeListener(ctx, l, *maxConns)
			if err == nil || errors.Is(err, context.Canceled) {
				e.status("device stopped")
				return nil
			}
			return ioErr(err)
		}
	},
}

// dropLine formats a connection the device closed of its own accord.
func dropLine(now time.Time, d *device.Drop) string {
	var b strings.Builder
	b.WriteString(now.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, " dropped reason=%s", d.Reason)
	if d.Remote != nil {
		fmt.Fprintf(&b, " remote=%s", d.Remote)
	}
	fmt.Fprintf(&b, " requests=%d", d.Requests)
	if d.Err != nil {
		fmt.Fprintf(&b, " error=%s", strconv.Quote(d.Err.Error()))
	}
	return b.String()
}

func identityString(id token.Identity) string {
	var parts []string
	if id.Endpoint != "" {
		parts = append(parts, token.PrefixEndpoint+id.Endpoint)
	}
	if id.DeviceID != "" {
		parts = append(parts, token.PrefixDeviceID+id.DeviceID)
	}
	return strings.Join(parts, " ")
}

// deviceOperations builds the registry of the simulated device.
func deviceOperations(id token.Identity, specs []string, builtin bool) (*device.Registry, []string, error) {
	reg := &device.Registry{}
	var names []string
	add := func(name string, h device.HandlerFunc) error {
		if err := reg.Register(name, h); err != nil {
			return usageErrorf("-op %s: %v", name, err)
		}
		names = append(names, name)
		return nil
	}
	if builtin {
		reading, err := json.Marshal(struct {
			Endpoint     string  `json:"endpoint,omitempty"`
			DeviceID     string  `json:"device_id,omitempty"`
			Temperature  float64 `json:"temperature_c"`
			HumidityPcnt int     `json:"humidity_pct"`
		}{id.Endpoint, id.DeviceID, 21.5, 40})
		if err != nil {
			return nil, nil, err
		}
		if err := add("read-data", func(context.Context, *device.Call) ([]byte, error) { return reading, nil }); err != nil {
			return nil, nil, err
		}
		if err := add("configure", echo); err != nil {
			return nil, nil, err
		}
	}
	for _, spec := range specs {
		name, reply, hasReply := strings.Cut(spec, "=")
		h := echo
		if hasReply {
			data := []byte(reply)
			h = func(context.Context, *device.Call) ([]byte, error) { return data, nil }
		}
		if err := add(name, h); err != nil {
			return nil, nil, err
		}
	}
	if len(names) == 0 {
		return nil, nil, usageErrorf("no operations: give -op or drop -no-builtin")
	}
	return reg, names, nil
}

// echo answers with the operation's name and arguments as JSON.
func echo(_ context.Context, call *device.Call) ([]byte, error) {
	args := make([]any, 0, len(call.Operation.Args))
	for _, a := range call.Operation.Args {
		switch a.Kind() {
		case token.KindInt:
			n, _ := a.Int()
			args = append(args, n)
		case token.KindText:
			s, _ := a.Text()
			args = append(args, s)
		case token.KindBytes:
			b, _ := a.Bytes()
			args = append(args, map[string]string{"hex": hex.EncodeToString(b)})
		}
	}
	return json.Marshal(struct {
		Operation string `json:"operation"`
		Args      []any  `json:"args"`
	}{call.Operation.Name, args})
}

// decisionLine formats one device decision as a status line.
func decisionLine(now time.Time, d *device.Outcome) string {
	var b strings.Builder
	b.WriteString(now.UTC().Format(time.RFC3339))
	if d.Allowed() {
		b.WriteString(" allowed")
	} else {
		b.WriteString(" denied")
	}
	fmt.Fprintf(&b, " request=%s", strings.ReplaceAll(d.Request.String(), " ", "-"))
	if d.Operation != "" {
		fmt.Fprintf(&b, " op=%s", d.Operation)
	}
	if d.Subject != "" {
		// Before the token's signature verified, the subject is only
		// what the request claims.
		key := "sub"
		if d.Check != device.CheckNone && d.Check <= device.CheckTokenSignature {
			key = "claimed-sub"
		}
		fmt.Fprintf(&b, " %s=%s", key, strconv.Quote(d.Subject))
	}
	fmt.Fprintf(&b, " status=%s", strconv.Quote(d.Status.String()))
	if !d.Allowed() {
		fmt.Fprintf(&b, " check=%s", strings.ReplaceAll(d.Check.String(), " ", "-"))
		if d.Err != nil {
			fmt.Fprintf(&b, " reason=%s", strconv.Quote(d.Err.Error()))
		}
	}
	if u := &d.Update; u.Carried {
		if u.Installed {
			fmt.Fprintf(&b, " update=installed update-seq=%d", u.Sequence)
		} else {
			fmt.Fprintf(&b, " update=ignored update-reason=%s", strconv.Quote(fmt.Sprint(u.Err)))
		}
	}
	if d.Chain != nil {
		// A delegated request: every key of the chain, the token's first.
		keys := []string{hex.EncodeToString(d.KeyThumbprint())}
		for _, l := range d.Chain {
			keys = append(keys, hex.EncodeToString(l.Thumbprint()))
		}
		fmt.Fprintf(&b, " chain=%s", strings.Join(keys, ","))
		if sub := d.Chain[len(d.Chain)-1].Subject; sub != "" {
			fmt.Fprintf(&b, " delegate=%s", strconv.Quote(sub))
		}
	}
	if d.Remote != nil {
		fmt.Fprintf(&b, " remote=%s", d.Remote)
	}
	return b.String()
}

// lockedWriter serialises whole lines from concurrent connections.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) line(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(l.w, s)
}
