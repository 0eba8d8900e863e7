// Package console is the device owner's web console: HTML pages, served
// by the authorization service on its administration listener, to sign in
// with an administrator API key; list, search, create, edit and delete
// policies, subjects, groups, devices and API keys; explain a decision;
// preview a change with what-if before saving it; and list issued tokens
// and revoke them.
//
// [New] takes the administration API's handler ([policy.Service].AdminHandler)
// and returns an [http.Handler] to mount at [DefaultPrefix]. Every page
// calls the administration API in process with the session's API key, so
// the console can do nothing the key could not, and every validation
// message it shows is the API's own (field errors appear next to the input
// of the field they name). Saves are conditional, so that nobody's change
// is lost: an edit form carries the record's ETag in a hidden field and
// is saved with If-Match, and a record changed by someone else since the
// form was opened is not overwritten (the page says so, keeps what was
// typed and links to the record reloaded); a new record is saved with
// If-None-Match: *, so that it never replaces one created meanwhile.
//
// # Why plain server-rendered HTML
//
// Pages are rendered on the server with html/template, from templates and
// a stylesheet embedded in the binary; there is no script at all, no
// framework, no build step and nothing from a CDN. Forms post and pages
// redirect, so the console works without JavaScript, by keyboard, and with
// assistive technology as plain HTML does (labels on every input, tables
// with header cells, a skip link, visible focus). It also keeps the
// security story short: html/template escapes every value for its context,
// and a Content-Security-Policy that allows no script at all and only the
// console's own stylesheet leaves an injected script nowhere to run.
//
// # Security considerations
//
//   - Sign-in posts an administrator API key, which the console checks by
//     listing a policy with it (401: not a key; 403: not an administrator's
//     key, refused). The key stays on the server, in a session held in
//     memory; the browser gets only a session id: 256 random bits in a
//     cookie that is HttpOnly, SameSite=Strict, limited to the console's
//     path and Secure when the request came over TLS (or
//     [Options].SecureCookies). Nothing goes into localStorage.
//   - Sessions end after [Options].IdleTimeout without use, after
//     [Options].MaxLifetime in all, and on sign-out; the API key is
//     dropped then. At most [Options].MaxSessions are held: expired ones
//     are swept as they are met and at most every minute, and beyond the
//     bound the least recently used session ends. Sessions live in this
//     process only: a restart signs everyone out.
//   - Failed sign-ins are logged (event sda.console.sign_in, without the
//     key) and limited per client address ([DefaultSignInFailures] per
//     [DefaultSignInWindow], then 429). The key is checked by the
//     service, which looks it up by hash.
//   - Every state change is a POST carrying the session's CSRF token (a
//     synchronizer token of 256 random bits, compared in constant time),
//     and every request other than GET and HEAD must come from the
//     console's origin: a Sec-Fetch-Site header, when present, must be
//     same-origin, and an Origin header must equal the console's origin
//     (the request's scheme and Host, or [Options].Origin behind a proxy);
//     a request with neither header is refused. GET pages change nothing.
//   - Every response carries Content-Security-Policy "default-src 'none';
//     script-src 'none'; style-src 'self'; img-src 'self'; form-action
//     'self'; frame-ancestors 'none'; base-uri 'none'" (no page has a
//     script, so none may run),
//     X-Content-Type-Options nosniff, X-Frame-Options DENY, Referrer-Policy
//     same-origin and Cache-Control no-store (so that a page with a created
//     key's secret is not cached).
//   - Redirects carry only fixed notice codes, never text to display, so
//     a link cannot make the console show a message of its choosing.
//   - Searching reads the API's lists page by page and stops after
//     20,000 records; each answer of the API is read into memory up to
//     8 MiB.
package console
