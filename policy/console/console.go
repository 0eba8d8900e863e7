package console

import (
	"bytes"
	"crypto/rand"
	"embed"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// DefaultPrefix is the path the console is served under when
// [Options].Prefix is empty.
const DefaultPrefix = "/console/"

// contentSecurityPolicy is sent with every response: only the console's
// own stylesheet and script load, forms post only to the console, and no
// other site may frame it.
const contentSecurityPolicy = "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Options configure a [Console]. The zero value is usable.
type Options struct {
	// Prefix is the path the console is mounted at, with a leading and a
	// trailing slash; DefaultPrefix when empty.
	Prefix string
	// SecureCookies marks the session cookie Secure even on plain HTTP
	// requests, for a console behind a TLS-terminating proxy; requests
	// that arrive over TLS always get a Secure cookie.
	SecureCookies bool
	// Origin is the console's origin ("https://admin.example.com") as the
	// browser sees it, for a console behind a proxy; empty means the
	// request's own scheme and Host.
	Origin string
	// IdleTimeout, MaxLifetime and MaxSessions bound sessions; zero means
	// DefaultIdleTimeout, DefaultMaxLifetime and DefaultMaxSessions.
	IdleTimeout time.Duration
	MaxLifetime time.Duration
	MaxSessions int
	// SignInFailures failed sign-ins from one client address within
	// SignInWindow make the next wait; zero means the defaults.
	SignInFailures int
	SignInWindow   time.Duration
	// Logger receives the sign-in and sign-out events; nil means
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the source of session ids and CSRF tokens; nil means
	// crypto/rand.
	Rand io.Reader
}

// Console is the web console: an [http.Handler] serving HTML pages under
// its prefix that call the administration API in process.
type Console struct {
	admin    http.Handler
	prefix   string
	opts     Options
	sessions *sessionStore
	limiter  *signInLimiter
	pages    map[string]*template.Template
	static   http.Handler
	mux      *http.ServeMux
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// New returns a console that serves the administration API of admin (a
// [policy.Service]'s AdminHandler) to signed-in administrators.
func New(admin http.Handler, opts *Options) (*Console, error) {
	if admin == nil {
		return nil, ErrNoAdminHandler
	}
	c := &Console{admin: admin}
	if opts != nil {
		c.opts = *opts
	}
	o := &c.opts
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if !strings.HasPrefix(o.Prefix, "/") || !strings.HasSuffix(o.Prefix, "/") {
		return nil, &PrefixError{Prefix: o.Prefix}
	}
	c.prefix = o.Prefix
	o.Origin = strings.TrimSuffix(o.Origin, "/")
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxLifetime <= 0 {
		o.MaxLifetime = DefaultMaxLifetime
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	if o.SignInFailures <= 0 {
		o.SignInFailures = DefaultSignInFailures
	}
	if o.SignInWindow <= 0 {
		o.SignInWindow = DefaultSignInWindow
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	c.sessions = newSessionStore(o.MaxSessions, o.IdleTimeout, o.MaxLifetime, o.Rand)
	c.limiter = newSignInLimiter(o.SignInFailures, o.SignInWindow)
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	c.pages = pages
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	c.static = http.StripPrefix(c.prefix+"static/", http.FileServerFS(sub))
	c.mux = http.NewServeMux()
	c.routes()
	return c, nil
}

// ServeHTTP sets the security headers of every response, refuses a
// state-changing request from another origin, and serves the page.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if !c.sameOrigin(r) {
			c.logger().LogAttrs(r.Context(), slog.LevelWarn, "sda.console.cross_origin",
				slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.String("origin", r.Header.Get("Origin")), slog.String("sec_fetch_site", r.Header.Get("Sec-Fetch-Site")))
			c.renderError(w, r, http.StatusForbidden, "This request came from another site and was refused.")
			return
		}
	}
	c.mux.ServeHTTP(w, r)
}

// sameOrigin reports whether a state-changing request comes from the
// console's own pages: a Sec-Fetch-Site header, when sent, must be
// same-origin, and the Origin header must be the console's origin. A
// request with neither header (not from a current browser) is refused.
func (c *Console) sameOrigin(r *http.Request) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	origin := r.Header.Get("Origin")
	if site == "" && origin == "" {
		return false
	}
	if site != "" && site != "same-origin" {
		return false
	}
	if origin != "" && origin != c.origin(r) {
		return false
	}
	return true
}

// origin is the console's origin for the request.
func (c *Console) origin(r *http.Request) string {
	if c.opts.Origin != "" {
		return c.opts.Origin
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (c *Console) logger() *slog.Logger { return c.opts.Logger }

// clientAddr is the client's IP address, without the port.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// parsePages parses each page template with the layout.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" || base == "parts" {
			continue
		}
		t, err := template.New(base).Funcs(templateFuncs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html", n)
		if err != nil {
			return nil, err
		}
		pages[base] = t
	}
	return pages, nil
}

// page is what every template gets.
type page struct {
	Title    string
	Prefix   string
	SignedIn bool   // set by render: there is a session (CSRF is set)
	CSRF     string // the session's CSRF token, for the forms
	Nav      string // the current section, for aria-current
	Notice   string
	Problem  string
	Data     any
}

// render writes a page, buffered so that a template error becomes a 500
// rather than half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	p.Prefix = c.prefix
	p.SignedIn = p.CSRF != ""
	var buf bytes.Buffer
	t := c.pages[name]
	if t == nil {
		status, name = http.StatusInternalServerError, "error"
		t = c.pages[name]
		p.Problem = "internal error: no page template " + name
	}
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		c.logger().LogAttrs(r.Context(), slog.LevelError, "sda.console.template", slog.String("page", name), slog.String("error", err.Error()))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// renderError writes an error page.
func (c *Console) renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	c.render(w, r, status, "error", &page{Title: http.StatusText(status), Problem: msg})
}
