package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for -postgres

	"github.com/securedeviceaccess/sda/internal/certreload"
	"github.com/securedeviceaccess/sda/policy"
	"github.com/securedeviceaccess/sda/policy/console"
	"github.com/securedeviceaccess/sda/policy/sqlstore"
	"github.com/securedeviceaccess/sda/token"
)

// storeOpenTimeout bounds connecting to and reading the store at start.
const storeOpenTimeout = 15 * time.Second

var authserverCmd = &command{
	name:    "authserver",
	summary: "run the authorization service (token endpoint, trust anchors, administration API)",
	details: `Serves POST /ace-auth/token, GET /v3/trust-anchors, GET /v1/status-update
and the administration API under /admin/v1/ (package policy; docs/PROTOCOL.md
section 9). Policies, subjects, devices and API keys live in a JSON store file
(-store) or in PostgreSQL (-postgres; keep the password in PGPASSWORD or
~/.pgpass rather than in the DSN). The first line on stdout is
  listening on https://<host:port>     (http:// with -insecure-http)
audit events go to stderr.

TLS: -tls-cert and -tls-key name PEM files (the certificate chain, leaf
first, and its key). They are read again on SIGHUP and, every -tls-watch,
when their contents change (a renewal, a Kubernetes secret update): new
connections get the new pair, open ones keep theirs. A new pair that cannot
be loaded is logged (sda.tls.reload_failed) and the old one stays in use.
Plain HTTP is served only with -insecure-http, and then on loopback
addresses only (127.0.0.0/8, ::1, localhost), unless
-insecure-http-any-address too (behind a TLS-terminating proxy).

With -admin-listen, the administration API is served on that address only,
apart from the token endpoint, the trust anchors and the status updates on
-listen (each answers the other's paths with HTTP 404): keep it on loopback
or an internal interface. It uses -admin-tls-cert and -admin-tls-key, else
-tls-cert and -tls-key. The second line on stdout is then
  administration API listening on https://<host:port>

Probes, on every listener and without a credential, in JSON: GET /healthz
answers 200 while the process serves (liveness); GET /readyz answers 200
when the store answers and the anchor key signs, else 503 (readiness).

Rate limits: the token endpoint takes at most -rate-address requests per
second from one client address (burst -rate-address-burst) and -rate-key
per API key (burst -rate-key-burst), and answers more with HTTP 429 and
Retry-After. 0 turns a limit off; behind a proxy every request comes from
the proxy's address, so limit per address there and use -rate-address 0.

Shutdown: on SIGTERM or SIGINT the listeners close, requests in flight have
-shutdown-timeout to finish (those still running then are cut, and the exit
status is 4), and the store is closed.

With -metrics-listen, the service's metrics (tokens issued and denied by
reason, decision, signing and store latency, store errors, HTTP requests by
route and status; package policyprom lists them) are served at /metrics in
the Prometheus exposition format on that address only: keep it on loopback
or an internal interface. The next line on stdout is then
  metrics listening on http://<host:port>

The anchor key can stay in a PKCS#11 token (an HSM, or SoftHSM2): -key
takes an RFC 7512 URI naming the module, the token and the key, and the
token's PIN comes from -pin-file FILE ("-": stdin) or the URI's pin-source,
never from the command line (pin-value is refused). sdactl keys generate
-pkcs11 makes such a key and prints its URI; for example, with SoftHSM2 on
Debian and -pin-file /etc/sda/pin:
  -key 'pkcs11:token=sda;object=anchor?module-path=/usr/lib/softhsm/libsofthsm2.so'

Bootstrap: a new store has no API key, so nobody can use the service.
  sdactl authserver -store store.json -init > admin.apikey
creates the user subject and the administrator API key named by -admin
("admin"), prints the key's secret once on stdout (only its SHA-256 is
stored) and exits. Then run the service, and with that key create subjects,
devices, policies and the technicians' API keys through the administration
API. Its bodies are JSON and need "Content-Type: application/json" (curl's
--data alone sends a form type, which is refused with HTTP 415). For example:
  sdactl authserver -store store.json -key anchor.key -listen 127.0.0.1:8080 -insecure-http &
  ADMIN=$(cat admin.apikey)
  curl -H "Authorization: Bearer $ADMIN" -H "Content-Type: application/json" \
      -X PUT http://127.0.0.1:8080/admin/v1/subjects/alice --data '{"id":"alice","kind":"user"}'
  curl -H "Authorization: Bearer $ADMIN" -H "Content-Type: application/json" \
      -X PUT http://127.0.0.1:8080/admin/v1/policies/roof --data '{"id":"roof",
      "status":"active","effect":"allow","subjects":{"users":["alice"]},
      "operations":[{"name":"read-data"}],"devices":{"endpoint_names":["hvac-1"]},
      "token_lifetime_seconds":3600}'
  curl -H "Authorization: Bearer $ADMIN" -H "Content-Type: application/json" \
      -X PUT http://127.0.0.1:8080/admin/v1/devices/0123456789abcdef0123456789abcdef \
      --data '{"id":"0123456789abcdef0123456789abcdef","endpoint_name":"hvac-1"}'
  curl -H "Authorization: Bearer $ADMIN" -H "Content-Type: application/json" \
      -X POST http://127.0.0.1:8080/admin/v1/api-keys --data '{"id":"alice-key","subject":"alice"}'
The last answer holds alice's API key secret ("secret"), shown only once, for
"sdactl token fetch -credential-file". The store file (-store) is the
service's own: do not send it or edit it while the service runs.

Web console: beside the administration API (on -listen, or on -admin-listen
when given), a web console for the device owner is served at /console/:
open http://127.0.0.1:8080/console/ and sign in with an administrator API
key (such as the one -init printed) to manage policies, subjects, groups,
devices and API keys, explain decisions, preview changes and revoke tokens.
Its forms are accepted only from its own origin: behind a TLS-terminating
proxy, give the origin browsers use with -console-origin https://host[:port].
-console=false turns it off.
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		storeFile := fs.String("store", "", "JSON store `file` (created on first write, in a directory that must exist)")
		dsn := fs.String("postgres", "", "PostgreSQL `DSN` (instead of -store)")
		schema := fs.String("schema", "sda", "PostgreSQL schema `name` (with -postgres)")
		initStore := fs.Bool("init", false, "create the administrator API key, print its secret once, and exit")
		adminID := fs.String("admin", "admin", "subject and API key `id` that -init creates")
		keyFile := fs.String("key", "", "trust anchor private key `file` that signs tokens, or a pkcs11: URI naming it in a PKCS#11 token (required to serve)")
		passFile := fs.String("passphrase-file", "", "passphrase of an encrypted -key, first line of this `file` (\"-\": stdin)")
		pinFile := fs.String("pin-file", "", "PIN of the PKCS#11 token of a -key pkcs11:..., first line of this `file` (\"-\": stdin)")
		listen := fs.String("listen", "127.0.0.1:8080", "TCP `address` to listen on")
		adminListen := fs.String("admin-listen", "", "TCP `address` of a listener of its own for the administration API, which -listen then does not serve")
		metricsListen := fs.String("metrics-listen", "", "TCP `address` of a listener of its own serving Prometheus metrics at /metrics")
		profile := fs.String("profile", "v1", "token profile: v1 (deployed SDA devices) or v2")
		kid := fs.Bool("kid", false, "v2: put the anchor key's RFC 9679 thumbprint in the tokens' kid header")
		desc := fs.String("description", "sdactl authorization service", "trust anchor description published at /v3/trust-anchors")
		consoleOn := fs.Bool("console", true, "serve the web console at /console/ on the listener of the administration API")
		consoleOrigin := fs.String("console-origin", "", "the console's `origin` (https://host:port) as browsers see it, behind a TLS-terminating proxy; its forms are refused from any other origin")
		serving := addServingFlags(fs) // serve.go
		return func(ctx context.Context, e *env, args []string) error {
			if err := wantArgs(args, 0, 0, ""); err != nil {
				return err
			}
			if (*storeFile == "") == (*dsn == "") {
				return usageErrorf("give exactly one of -store and -postgres")
			}
			prof, err := parseProfile(*profile)
			if err != nil {
				return err
			}
			if *kid && prof != token.ProfileV2 {
				return usageErrorf("-kid needs -profile v2")
			}
			if !*initStore && *keyFile == "" {
				return usageErrorf("-key is required")
			}
			var publicTLS, adminTLS *certreload.Reloader
			if !*initStore {
				if publicTLS, adminTLS, err = serving.tlsReloaders(*listen, *adminListen); err != nil {
					return err
				}
			}
			rateLimit, err := serving.rateLimit()
			if err != nil {
				return err
			}
			store, closeStore, err := e.openPolicyStore(ctx, *storeFile, *dsn, *schema)
			if err != nil {
				return err
			}
			defer closeStore()
			if *initStore {
				return e.initPolicyStore(ctx, store, *adminID)
			}
			key, closeKey, err := e.loadAnchorKey(*keyFile, *passFile, *pinFile)
			if err != nil {
				return err
			}
			defer closeKey()
			logger := slog.New(slog.NewTextHandler(e.stderr, nil))
			svc := &policy.Service{
				Store:             store,
				Signer:            key,
				Profile:           prof,
				AnchorDescription: *desc,
				AnchorCreatedAt:   e.now().UTC().Truncate(time.Second),
				Logger:            logger,
				Now:               e.now,
				RateLimit:         rateLimit,
			}
			metrics, err := serviceMetrics(svc, *metricsListen)
			if err != nil {
				return ioErr(err)
			}
			if *kid {
				if svc.KeyID, err = token.Thumbprint(key.Public()); err != nil {
					return inputErr(err)
				}
			}
			if prof == token.ProfileV1 {
				if alg, _ := token.AlgorithmFor(key.Public()); alg != token.AlgES256 {
					return inputErr(fmt.Errorf("-key: v1 tokens need a P-256 key, not %s", keyDescription(key.Public())))
				}
			}
			sctx, cancel := context.WithTimeout(ctx, storeOpenTimeout)
			err = svc.Sync(sctx)
			cancel()
			if err != nil {
				return storeError(err)
			}
			name, err := token.AnchorName(key.Public())
			if err != nil {
				return inputErr(err)
			}
			var main, admin http.Handler = svc, svc.AdminHandler()
			if *consoleOn {
				con, err := console.New(svc.AdminHandler(), &console.Options{Logger: logger, Now: e.now,
					Origin: *consoleOrigin, SecureCookies: strings.HasPrefix(*consoleOrigin, "https:")})
				if err != nil {
					return usageErrorf("-console-origin: %v", err)
				}
				main, admin = withConsole(con, main), withConsole(con, admin)
			}
			listeners := []httpListener{{addr: *listen, handler: main, tls: publicTLS}}
			if *adminListen != "" {
				listeners = []httpListener{
					{addr: *listen, handler: svc.PublicHandler(), tls: publicTLS},
					{name: "administration API ", addr: *adminListen, handler: admin, tls: adminTLS},
				}
			}
			listeners = append(listeners, metrics...)
			return e.serveHTTP(ctx, name, listeners, serveOptions{
				shutdownTimeout: serving.shutdownTimeout, tlsWatch: serving.tlsWatch, logger: logger})
		}
	},
}

// withConsole serves the web console under console.DefaultPrefix and
// everything else with h, untouched (a mux would clean or redirect paths
// the service answers itself).
func withConsole(con *console.Console, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case strings.HasPrefix(p, console.DefaultPrefix):
			con.ServeHTTP(w, r)
		case p == strings.TrimSuffix(console.DefaultPrefix, "/") && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			http.Redirect(w, r, console.DefaultPrefix, http.StatusMovedPermanently)
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// openPolicyStore opens the JSON file store or the PostgreSQL store.
func (e *env) openPolicyStore(ctx context.Context, file, dsn, schema string) (policy.Store, func(), error) {
	if file != "" {
		if err := checkStoreDir(file); err != nil {
			return nil, nil, err
		}
		s, err := policy.OpenFileStore(file)
		if err != nil {
			return nil, nil, storeError(err)
		}
		return s, func() {
			if err := s.Close(); err != nil {
				e.status("closing the store: %v", err)
			}
		}, nil
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, nil, usageErrorf("-postgres: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, storeOpenTimeout)
	defer cancel()
	e.status("connecting to PostgreSQL")
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, nil, ioErr(fmt.Errorf("PostgreSQL: %w", err))
	}
	s, err := sqlstore.Open(ctx, db, schema)
	if err != nil {
		db.Close()
		return nil, nil, storeError(err)
	}
	return s, func() { db.Close() }, nil
}

// checkStoreDir checks that the JSON store file can be written, before the
// service starts: the store rewrites it through a temporary file in its
// directory (created on the first write), so that directory must exist and
// take new files.
func checkStoreDir(file string) error {
	dir := filepath.Dir(file)
	f, err := os.CreateTemp(dir, "."+filepath.Base(file)+".*.check")
	if err != nil {
		return ioErr(fmt.Errorf("-store %s: the store cannot be written in directory %s: %w", file, dir, err))
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return ioErr(fmt.Errorf("-store %s: %w", file, err))
	}
	return nil
}

// initPolicyStore creates the administrator subject and API key and prints
// the key's secret on stdout.
func (e *env) initPolicyStore(ctx context.Context, store policy.Store, id string) error {
	snap, err := store.Snapshot(ctx)
	if err != nil {
		return storeError(err)
	}
	for _, k := range snap.APIKeys {
		if k.ID == id {
			return failedErr(fmt.Errorf("the store already has an API key %q; delete it through the administration API to replace it", id))
		}
	}
	secret, key, err := policy.NewAPIKey(nil, id, id, true, e.now())
	if err != nil {
		return usageErrorf("-admin: %v", err)
	}
	changes := []policy.Change{policy.PutAPIKey(key)}
	hasSubject := false
	for _, s := range snap.Subjects {
		hasSubject = hasSubject || s.ID == id
	}
	if !hasSubject {
		changes = append(changes, policy.PutSubject(&policy.Subject{ID: id, Kind: policy.User}))
	}
	if _, err := store.Apply(ctx, changes...); err != nil {
		return storeError(err)
	}
	e.status("created administrator API key %q; its secret follows on stdout and is shown only this once", id)
	fmt.Fprintln(e.stdout, secret)
	return nil
}

// storeError maps a policy store error to its exit code.
func storeError(err error) error {
	switch {
	case errors.Is(err, policy.ErrInvalid), errors.Is(err, policy.ErrConflict):
		return inputErr(err)
	default:
		return ioErr(err)
	}
}
