package device

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/securedeviceaccess/sda/token"
)

// Call is the verified view of a request a [Handler] receives: everything
// in it has passed the whole verification pipeline, scope included.
type Call struct {
	// Operation is the operation with its typed arguments (token.Arg:
	// Int, Text, Bytes).
	Operation token.Operation
	// Issuer, Subject and TokenID are the token's iss, sub and cti. For
	// a delegated request they are the token's, that is the first
	// delegator's; Chain names the delegates.
	Issuer  string
	Subject string
	TokenID []byte
	// Scope is the effective scope, which permits Operation: the token's,
	// or for a delegated request the scope of the last link of its chain
	// (every link's scope and the token's permit Operation).
	Scope token.Scope
	// Profile is the token's profile (v1 or v2).
	Profile token.Profile
	// Device is the device's identity.
	Device token.Identity
	// Nonce is the nonce the request consumed.
	Nonce uint64
	// Chain names the links of the verified delegation chain of a
	// delegated request (docs/PROTOCOL.md section 13), in order: the
	// request was signed by the last link's key. nil when the request
	// was not delegated.
	Chain []ChainLink
}

// Delegated reports whether the request came with a delegation chain:
// signed not by the token's holder but by the last delegate of Chain.
func (c *Call) Delegated() bool { return len(c.Chain) > 0 }

// Handler runs one operation. It returns the data for the response (nil
// for none), or an error, which the technician sees as
// token.StatusOperationFailed (0x0FFFFFFF) and the audit log sees in full. A
// panicking handler is recovered and answered with token.StatusInternalError.
// Handlers may run concurrently.
type Handler interface {
	Run(ctx context.Context, call *Call) ([]byte, error)
}

// HandlerFunc adapts a function to [Handler].
type HandlerFunc func(ctx context.Context, call *Call) ([]byte, error)

// Run calls f.
func (f HandlerFunc) Run(ctx context.Context, call *Call) ([]byte, error) { return f(ctx, call) }

// ReservedPrefix starts the names of built-in operations ([RevokeOperation]);
// a [Registry] refuses to register such names.
const ReservedPrefix = "sda-"

// Registry maps operation names to handlers, by exact name. The zero value
// is an empty registry ready to use; it is safe for concurrent use.
type Registry struct {
	mu sync.RWMutex
	m  map[string]registered
}

type registered struct {
	h     Handler
	fresh Freshness
}

// Register adds h under name. The name must be a valid operation name
// ([token.ValidateName]), not start with [ReservedPrefix], and not be
// registered yet; otherwise the error matches [ErrConfig].
func (r *Registry) Register(name string, h Handler) error {
	return r.RegisterFresh(name, h, Freshness{})
}

// RegisterFresh adds h under name, as [Registry.Register] does, with a
// freshness requirement (v2, [Freshness]) that requests for the operation
// must meet besides those of the device and of the token's issuer. A
// negative f.MaxStatusAge is an [ErrConfig] error.
func (r *Registry) RegisterFresh(name string, h Handler, f Freshness) error {
	if err := f.validate(); err != nil {
		return err
	}
	if err := token.ValidateName(name); err != nil {
		return configError("%v", err)
	}
	if strings.HasPrefix(name, ReservedPrefix) {
		return configError("operation name %q is reserved", name)
	}
	if h == nil {
		return configError("nil handler for %q", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.m[name]; ok {
		return configError("operation %q registered twice", name)
	}
	if r.m == nil {
		r.m = make(map[string]registered)
	}
	r.m[name] = registered{h: h, fresh: f}
	return nil
}

// RegisterFunc adds f under name; see [Registry.Register].
func (r *Registry) RegisterFunc(name string, f func(ctx context.Context, call *Call) ([]byte, error)) error {
	if f == nil {
		return configError("nil handler for %q", name)
	}
	return r.Register(name, HandlerFunc(f))
}

// lookup returns the handler registered under name (nil when none) and
// its freshness requirement.
func (r *Registry) lookup(name string) (Handler, Freshness) {
	if r == nil {
		return nil, Freshness{}
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	e := r.m[name]
	return e.h, e.fresh
}

// runHandler runs h, turning a panic into an error matching ErrHandlerPanic.
func runHandler(ctx context.Context, h Handler, call *Call) (data []byte, panicked bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			data, panicked, err = nil, true, fmt.Errorf("%w: %v", ErrHandlerPanic, r)
		}
	}()
	data, err = h.Run(ctx, call)
	return data, false, err
}
