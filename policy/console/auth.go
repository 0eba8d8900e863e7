package console

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// cookieName is the session cookie's name.
const cookieName = "sda_console"

// signedIn is a handler of a page for a signed-in administrator.
type signedIn func(w http.ResponseWriter, r *http.Request, s *session)

// auth wraps a page that needs a session: without one (or with an expired
// one) a GET goes to the sign-in page and anything else is refused; a
// state-changing request must also carry the session's CSRF token in the
// form field "csrf".
func (c *Console) auth(h signedIn) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var id string
		if ck, err := r.Cookie(cookieName); err == nil {
			id = ck.Value
		}
		s, expired := c.sessions.get(id, c.opts.Now())
		if s == nil {
			if expired {
				c.clearCookie(w, r)
			}
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				q := url.Values{}
				if expired {
					q.Set("expired", "1")
				}
				to := c.prefix + "sign-in"
				if len(q) > 0 {
					to += "?" + q.Encode()
				}
				http.Redirect(w, r, to, http.StatusSeeOther)
				return
			}
			c.renderError(w, r, http.StatusForbidden, "You are not signed in, or your session expired. Sign in again.")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if err := r.ParseForm(); err != nil {
				c.renderError(w, r, http.StatusBadRequest, "The form could not be read.")
				return
			}
			if !s.validCSRF(r.PostForm.Get("csrf")) {
				c.logger().LogAttrs(r.Context(), slog.LevelWarn, "sda.console.csrf",
					slog.String("path", r.URL.Path), slog.String("remote", clientAddr(r)))
				c.renderError(w, r, http.StatusForbidden, "The form's security token is missing or wrong. Reload the page and try again.")
				return
			}
		}
		h(w, r, s)
	}
}

// signInPage answers GET sign-in.
func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	p := &page{Title: "Sign in"}
	switch {
	case r.URL.Query().Get("expired") != "":
		p.Notice = "Your session expired. Sign in again."
	case r.URL.Query().Get("signed-out") != "":
		p.Notice = "You are signed out."
	}
	c.render(w, r, http.StatusOK, "sign-in", p)
}

// signIn answers POST sign-in: it checks the API key by listing one
// policy with it (which needs an administrator), and starts a session.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	now := c.opts.Now()
	addr := clientAddr(r)
	if ok, wait := c.limiter.allowed(addr, now); !ok {
		c.logger().LogAttrs(r.Context(), slog.LevelWarn, "sda.console.sign_in",
			slog.String("result", "rate_limited"), slog.String("remote", addr))
		w.Header().Set("Retry-After", retryAfter(wait))
		c.render(w, r, http.StatusTooManyRequests, "sign-in", &page{Title: "Sign in",
			Problem: "Too many failed sign-ins from your address. Wait a few minutes and try again."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		c.renderError(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	key := strings.TrimSpace(r.PostForm.Get("api_key"))
	fail := func(status int, result, msg string) {
		c.limiter.failed(addr, now)
		c.logger().LogAttrs(r.Context(), slog.LevelWarn, "sda.console.sign_in",
			slog.String("result", result), slog.String("remote", addr))
		c.render(w, r, status, "sign-in", &page{Title: "Sign in", Problem: msg})
	}
	if key == "" || len(key) > maxAPIKeyLen {
		fail(http.StatusUnauthorized, "invalid", "Enter an administrator API key.")
		return
	}
	err := c.call(r.Context(), r, key, http.MethodGet, adminPath("policies"), url.Values{"limit": {"1"}}, nil, nil)
	var ae *apiError
	switch {
	case err == nil:
	case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized:
		fail(http.StatusUnauthorized, "unknown_key", "This API key is not valid.")
		return
	case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
		fail(http.StatusForbidden, "not_admin", "This API key is not an administrator's: the console needs an administrator API key.")
		return
	default:
		c.logger().LogAttrs(r.Context(), slog.LevelError, "sda.console.sign_in",
			slog.String("result", "error"), slog.String("remote", addr), slog.String("error", err.Error()))
		c.render(w, r, http.StatusServiceUnavailable, "sign-in", &page{Title: "Sign in", Problem: apiMessage(err)})
		return
	}
	id, _, err := c.sessions.create(key, now)
	if err != nil {
		c.renderError(w, r, http.StatusInternalServerError, "The session could not be started.")
		return
	}
	c.limiter.succeeded(addr)
	c.logger().LogAttrs(r.Context(), slog.LevelInfo, "sda.console.sign_in",
		slog.String("result", "ok"), slog.String("remote", addr))
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: c.prefix, HttpOnly: true,
		Secure: c.secure(r), SameSite: http.SameSiteStrictMode, MaxAge: int(c.opts.MaxLifetime / time.Second)})
	http.Redirect(w, r, c.prefix+"policies", http.StatusSeeOther)
}

// signOut answers POST sign-out: the session ends and its API key is
// forgotten.
func (c *Console) signOut(w http.ResponseWriter, r *http.Request, _ *session) {
	if ck, err := r.Cookie(cookieName); err == nil {
		c.sessions.end(ck.Value)
	}
	c.clearCookie(w, r)
	c.logger().LogAttrs(r.Context(), slog.LevelInfo, "sda.console.sign_out", slog.String("remote", clientAddr(r)))
	http.Redirect(w, r, c.prefix+"sign-in?signed-out=1", http.StatusSeeOther)
}

func (c *Console) clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: c.prefix, HttpOnly: true,
		Secure: c.secure(r), SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// secure reports whether the session cookie is Secure.
func (c *Console) secure(r *http.Request) bool {
	return r.TLS != nil || c.opts.SecureCookies || strings.HasPrefix(c.opts.Origin, "https:")
}

func retryAfter(d time.Duration) string {
	s := int(d/time.Second) + 1
	return strconv.Itoa(s)
}
