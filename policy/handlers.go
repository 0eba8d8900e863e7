package policy

import (
	"net/http"
	"slices"
	"strings"
)

// PublicHandler returns the handler of the endpoints that technicians'
// applications call: the token endpoint (POST [TokenPath]), the trust
// anchor list (GET [TrustAnchorsPath]) and the status updates (GET
// [StatusUpdatePath]), and the probes ([HealthzPath], [ReadyzPath]). Every
// other path, the administration API's included, is answered 404 in the
// JSON error format.
//
// Serve it where the applications reach it, and [Service.AdminHandler] on
// another listener, such as an internal interface or loopback, so that the
// administration API is not exposed with the token endpoint. Both may run
// at the same time over one Service. The handler is created once and is
// safe for concurrent use.
func (s *Service) PublicHandler() http.Handler { return s.handlers().public }

// AdminHandler returns the handler of the administration API: the paths
// under [AdminPathPrefix] (docs/PROTOCOL.md, "Administration API"), which
// need an administrator's credential, and the probes ([HealthzPath],
// [ReadyzPath]). Every other path, the token endpoint and the trust anchor
// list included, is answered 404 in the JSON error format.
//
// An integrator may serve it on an internal listener only, apart from
// [Service.PublicHandler]. The handler is created once and is safe for
// concurrent use.
func (s *Service) AdminHandler() http.Handler { return s.handlers().admin }

// ServeHTTP serves the paths of both [Service.PublicHandler] and
// [Service.AdminHandler]: the convenience for a service on one listener.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handlers().all.ServeHTTP(w, r) }

// Routes returns the routes of the HTTP API, as [http.ServeMux] patterns
// ("POST /ace-auth/token", "GET /admin/v1/policies/{id}"), sorted: every
// route [Service.ServeHTTP] serves, those of [Service.PublicHandler] and
// of [Service.AdminHandler]. A GET route also answers HEAD. It is for
// checking a description of the API, such as docs/openapi.yaml, against
// the service.
func (s *Service) Routes() []string {
	var out []string
	for _, m := range []map[string]apiHandler{s.publicRoutes(), s.adminRoutes(), s.probeRoutes()} {
		for pattern := range m {
			out = append(out, pattern)
		}
	}
	slices.Sort(out)
	return out
}

// serviceHandlers are the Service's HTTP handlers, created on first use.
type serviceHandlers struct {
	public, admin, all *router
}

func (s *Service) handlers() *serviceHandlers {
	s.httpOnce.Do(func() {
		public, admin, probes := s.publicRoutes(), s.adminRoutes(), s.probeRoutes()
		s.http = &serviceHandlers{
			public: s.newRouter(public, probes),
			admin:  s.newRouter(admin, probes),
			all:    s.newRouter(public, admin, probes),
		}
	})
	return s.http
}

// apiHandler serves one route of the HTTP API. It writes the answer on
// success; an error it returns is answered in the JSON error format.
type apiHandler func(w http.ResponseWriter, r *http.Request, requestID string) error

// publicRoutes maps the [http.ServeMux] patterns of the public endpoints to
// their handlers. A GET pattern also matches HEAD.
func (s *Service) publicRoutes() map[string]apiHandler {
	return map[string]apiHandler{
		"POST " + TokenPath:       s.serveToken,
		"GET " + TrustAnchorsPath: s.serveTrustAnchors,
		"GET " + StatusUpdatePath: s.serveStatusUpdate,
	}
}

// router routes requests to apiHandlers with an [http.ServeMux] and
// answers in the JSON error format what the mux would answer itself: 404
// for a path that no pattern matches, 405 with an Allow header for a path
// that patterns of other methods match, and 404 instead of a redirect for
// an unclean path (with "//", "." or ".." segments): a redirect could
// turn a PUT or DELETE into a GET, and clients of the API use clean paths.
type router struct {
	s   *Service
	mux *http.ServeMux
}

// newRouter returns a router serving the routes of all the maps.
func (s *Service) newRouter(routes ...map[string]apiHandler) *router {
	mux := http.NewServeMux()
	for _, m := range routes {
		for pattern, h := range m {
			mux.Handle(pattern, routeHandler{s, h})
		}
	}
	return &router{s: s, mux: mux}
}

// ServeHTTP gives the request an id (X-Request-Id, and in the error body
// and the audit log) and passes it to the mux.
func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := newRequestID()
	w.Header().Set("X-Request-Id", requestID)
	if rt.s.Metrics != nil {
		rt.serveMeasured(w, r, func(w http.ResponseWriter) { rt.route(w, r, requestID) })
		return
	}
	rt.route(w, r, requestID)
}

// route answers the request: 404 for an escaped slash, else the mux's answer.
func (rt *router) route(w http.ResponseWriter, r *http.Request, requestID string) {
	if hasEscapedSlash(r.URL.RawPath) {
		rt.s.writeError(w, r, requestID, errPathNotFound)
		return
	}
	rt.mux.ServeHTTP(&muxWriter{ResponseWriter: w, s: rt.s, r: r, requestID: requestID}, r)
}

// hasEscapedSlash reports whether an escaped path has %2F. The mux would
// unescape it into a wildcard ("/admin/v1/policies/a%2Fb" into the {id}
// "a/b"); no path of the API has one, as no id has a slash.
func hasEscapedSlash(rawPath string) bool {
	return strings.Contains(rawPath, "%2F") || strings.Contains(rawPath, "%2f")
}

// routeHandler is the mux's handler of one route.
type routeHandler struct {
	s *Service
	h apiHandler
}

// ServeHTTP runs the route's handler with the underlying ResponseWriter
// (so that http.MaxBytesReader reaches the server's) and answers its error.
func (rh routeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mw := w.(*muxWriter) // the router is the only way to the mux
	if err := rh.h(mw.ResponseWriter, r, mw.requestID); err != nil {
		rh.s.writeError(mw.ResponseWriter, r, mw.requestID, err)
	}
}

// muxWriter is the ResponseWriter the router gives the mux. The routes'
// handlers write to the underlying ResponseWriter, so what reaches
// muxWriter is the mux's own answer, which it replaces with the JSON
// error: 405 (keeping the mux's Allow header) or else 404.
type muxWriter struct {
	http.ResponseWriter
	s         *Service
	r         *http.Request
	requestID string
	answered  bool
}

func (w *muxWriter) WriteHeader(code int) {
	if w.answered {
		return
	}
	w.answered = true
	h := w.Header()
	h.Del("Location")
	err := errPathNotFound
	if code == http.StatusMethodNotAllowed {
		err = errMethodNotAllow
		h.Set("Allow", allowHeader(h.Get("Allow")))
	} else {
		h.Del("Allow")
	}
	w.s.writeError(w.ResponseWriter, w.r, w.requestID, err)
}

// Write discards the mux's own body.
func (w *muxWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusNotFound) // if the mux wrote no header
	return len(b), nil
}

// allowOrder is the order of methods in the Allow header.
var allowOrder = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete}

// allowHeader rewrites the mux's Allow value (methods sorted by name, HEAD
// listed with GET) in the service's order, GET, POST, PUT, DELETE, with
// HEAD implied by GET as the original service lists it (RFC 9110, section
// 10.2.1: the field advertises methods, it need not list all).
func allowHeader(mux string) string {
	listed := strings.Split(mux, ", ")
	var out []string
	for _, m := range allowOrder {
		if slices.Contains(listed, m) {
			out = append(out, m)
		}
	}
	for _, m := range listed {
		if m != "" && m != http.MethodHead && !slices.Contains(allowOrder, m) {
			out = append(out, m)
		}
	}
	return strings.Join(out, ", ")
}
