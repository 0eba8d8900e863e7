package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/securedeviceaccess/sda/internal/certreload"
	"github.com/securedeviceaccess/sda/policy"
)

// servingFlags are the flags of "sdactl authserver" about serving HTTP:
// TLS, plain HTTP, rate limits and shutdown.
type servingFlags struct {
	tlsCert, tlsKey           string
	adminTLSCert, adminTLSKey string
	tlsWatch                  time.Duration
	insecureHTTP              bool
	insecureAnyAddress        bool
	rateAddr, rateKey         float64
	rateAddrBurst             int
	rateKeyBurst              int
	shutdownTimeout           time.Duration
}

// Defaults of the serving flags.
const (
	defaultRateAddr        = 20 // token requests per second per client address
	defaultRateAddrBurst   = 40
	defaultRateKey         = 10 // token requests per second per API key
	defaultRateKeyBurst    = 20
	defaultTLSWatch        = 10 * time.Second
	defaultShutdownTimeout = 10 * time.Second
)

func addServingFlags(fs *flag.FlagSet) *servingFlags {
	f := new(servingFlags)
	fs.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate `file` (PEM, leaf first) of -listen, and of -admin-listen unless -admin-tls-cert")
	fs.StringVar(&f.tlsKey, "tls-key", "", "TLS private key `file` (PEM) of -tls-cert")
	fs.StringVar(&f.adminTLSCert, "admin-tls-cert", "", "TLS certificate `file` of -admin-listen, if not -tls-cert")
	fs.StringVar(&f.adminTLSKey, "admin-tls-key", "", "TLS private key `file` of -admin-tls-cert")
	fs.DurationVar(&f.tlsWatch, "tls-watch", defaultTLSWatch, "how often to check the TLS files for changes (`duration`; 0: on SIGHUP only)")
	fs.BoolVar(&f.insecureHTTP, "insecure-http", false, "serve plain HTTP where no TLS certificate is given, on loopback addresses only")
	fs.BoolVar(&f.insecureAnyAddress, "insecure-http-any-address", false, "with -insecure-http, also on addresses that are not loopback (behind a TLS-terminating proxy)")
	fs.Float64Var(&f.rateAddr, "rate-address", defaultRateAddr, "token requests per second allowed per client `rate` address (0: no limit)")
	fs.IntVar(&f.rateAddrBurst, "rate-address-burst", defaultRateAddrBurst, "token requests at once per client address (`n`)")
	fs.Float64Var(&f.rateKey, "rate-key", defaultRateKey, "token requests per second allowed per API key (`rate`; 0: no limit)")
	fs.IntVar(&f.rateKeyBurst, "rate-key-burst", defaultRateKeyBurst, "token requests at once per API key (`n`)")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", defaultShutdownTimeout, "on SIGTERM or SIGINT, how long in-flight requests may take to finish (`duration`)")
	return f
}

// rateLimit returns the service's rate limit, nil if both rates are 0.
func (f *servingFlags) rateLimit() (*policy.RateLimit, error) {
	if f.rateAddr < 0 || f.rateKey < 0 || f.rateAddrBurst < 0 || f.rateKeyBurst < 0 {
		return nil, usageErrorf("-rate-address, -rate-key and their bursts cannot be negative")
	}
	if f.rateAddr == 0 && f.rateKey == 0 {
		return nil, nil
	}
	return &policy.RateLimit{PerAddress: f.rateAddr, AddressBurst: f.rateAddrBurst, PerKey: f.rateKey, KeyBurst: f.rateKeyBurst}, nil
}

// tlsReloaders checks the TLS and plain HTTP flags against the listen
// addresses and loads the certificates: a nil Reloader means plain HTTP.
func (f *servingFlags) tlsReloaders(listen, adminListen string) (public, admin *certreload.Reloader, err error) {
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return nil, nil, usageErrorf("give both -tls-cert and -tls-key, or neither")
	}
	if (f.adminTLSCert == "") != (f.adminTLSKey == "") {
		return nil, nil, usageErrorf("give both -admin-tls-cert and -admin-tls-key, or neither")
	}
	if f.adminTLSCert != "" && adminListen == "" {
		return nil, nil, usageErrorf("-admin-tls-cert needs -admin-listen")
	}
	if f.shutdownTimeout <= 0 || f.tlsWatch < 0 {
		return nil, nil, usageErrorf("-shutdown-timeout must be positive and -tls-watch not negative")
	}
	if f.tlsCert != "" {
		if public, err = certreload.New(f.tlsCert, f.tlsKey); err != nil {
			return nil, nil, tlsError(err)
		}
	}
	admin = public
	if f.adminTLSCert != "" {
		if admin, err = certreload.New(f.adminTLSCert, f.adminTLSKey); err != nil {
			return nil, nil, tlsError(err)
		}
	}
	check := func(flagName, addr string, r *certreload.Reloader) error {
		switch {
		case r != nil:
			return nil
		case !f.insecureHTTP:
			return usageErrorf("%s %s: give -tls-cert and -tls-key, or -insecure-http to serve plain HTTP", flagName, addr)
		case !f.insecureAnyAddress && !isLoopback(addr):
			return usageErrorf("%s %s: plain HTTP is served on loopback addresses only, unless -insecure-http-any-address", flagName, addr)
		}
		return nil
	}
	if err := check("-listen", listen, public); err != nil {
		return nil, nil, err
	}
	if adminListen != "" {
		if err := check("-admin-listen", adminListen, admin); err != nil {
			return nil, nil, err
		}
	}
	return public, admin, nil
}

// tlsError maps an error loading a TLS pair to its exit code.
func tlsError(err error) error {
	if errors.Is(err, certreload.ErrInvalid) {
		return inputErr(fmt.Errorf("TLS: %w", err))
	}
	return ioErr(fmt.Errorf("TLS: %w", err))
}

// isLoopback reports whether the host of addr is a loopback address or
// "localhost". An empty host (every interface) is not.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// httpListener is an address the service listens on and what it serves there.
type httpListener struct {
	name    string // printed before "listening on"; empty for the first
	addr    string
	handler http.Handler
	tls     *certreload.Reloader // nil: plain HTTP
	l       net.Listener
}

// serveOptions are how serveHTTP serves.
type serveOptions struct {
	shutdownTimeout time.Duration
	tlsWatch        time.Duration // 0: no polling
	logger          *slog.Logger
}

// serveHTTP listens on every address, prints one "listening on" line for
// each, the first being "listening on http(s)://host:port", and serves them
// until ctx ends or one fails, then shuts all down gracefully: the
// listeners close, and requests in flight have opts.shutdownTimeout to
// finish. If an address cannot be listened on, nothing is served. The TLS
// pairs are reloaded on SIGHUP and, every opts.tlsWatch, when their files
// change; a pair that cannot be loaded is logged and the old one stays.
func (e *env) serveHTTP(ctx context.Context, anchorName string, listeners []httpListener, opts serveOptions) error {
	var lc net.ListenConfig
	for i := range listeners {
		l, err := lc.Listen(ctx, "tcp", listeners[i].addr)
		if err != nil {
			for _, prev := range listeners[:i] {
				prev.l.Close()
			}
			return ioErr(err)
		}
		listeners[i].l = l
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	e.watchTLS(wctx, listeners, opts)

	servers := make([]*http.Server, len(listeners))
	done := make(chan error, len(listeners))
	for i, hl := range listeners {
		servers[i] = &http.Server{
			Handler:           hl.handler,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(opts.logger.Handler(), slog.LevelWarn),
		}
		l := hl.l
		if hl.tls != nil {
			l = tls.NewListener(l, hl.tls.TLSConfig()) // HTTP/1.1: no ALPN offered
		}
		go func() { done <- servers[i].Serve(l) }()
	}
	for _, hl := range listeners {
		scheme := "http"
		if hl.tls != nil {
			scheme = "https"
		}
		fmt.Fprintf(e.stdout, "%slistening on %s://%s\n", hl.name, scheme, hl.l.Addr())
	}
	e.status("authorization service signing with anchor %s; stop with Ctrl-C", anchorName)
	var failed error
	running := len(servers)
	select {
	case failed = <-done: // a Serve failed before any shutdown
		running--
	case <-ctx.Done():
		e.status("shutting down: no new connections; requests in flight have %v to finish", opts.shutdownTimeout)
	}
	stopWatch()
	sctx, cancel := context.WithTimeout(context.Background(), opts.shutdownTimeout)
	defer cancel()
	var err error
	for _, srv := range servers {
		if serr := srv.Shutdown(sctx); serr != nil && err == nil {
			err = serr
		}
	}
	for ; running > 0; running-- {
		if serr := <-done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
	}
	if failed != nil {
		return ioErr(failed)
	}
	if err != nil {
		for _, srv := range servers {
			srv.Close()
		}
		return ioErr(fmt.Errorf("shutdown: requests still in flight after -shutdown-timeout %v were cut: %w", opts.shutdownTimeout, err))
	}
	e.status("stopped")
	return nil
}

// watchTLS reloads the listeners' TLS pairs on SIGHUP and, every
// opts.tlsWatch, when their files change, until ctx ends. The signal
// handler is installed before it returns, so a SIGHUP after the
// "listening on" line never ends the process.
func (e *env) watchTLS(ctx context.Context, listeners []httpListener, opts serveOptions) {
	var rs []*certreload.Reloader
	for _, hl := range listeners {
		if hl.tls != nil && (len(rs) == 0 || rs[len(rs)-1] != hl.tls) {
			rs = append(rs, hl.tls)
		}
	}
	if len(rs) == 0 {
		return
	}
	logResult := func(r *certreload.Reloader, how string, err error) {
		if err != nil {
			opts.logger.Error("sda.tls.reload_failed", slog.String("trigger", how), slog.String("cert", r.CertFile()),
				slog.String("error", err.Error()), slog.String("action", "serving the previous certificate"))
			return
		}
		opts.logger.Info("sda.tls.reloaded", slog.String("trigger", how), slog.String("cert", r.CertFile()))
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				for _, r := range rs {
					logResult(r, "SIGHUP", r.Reload())
				}
			}
		}
	}()
	if opts.tlsWatch > 0 {
		for _, r := range rs {
			go r.Watch(ctx, opts.tlsWatch, func() { logResult(r, "file change", nil) }, func(err error) { logResult(r, "file change", err) })
		}
	}
}
