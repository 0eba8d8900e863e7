// Command sdactl is a command-line tool for integrators of Secure Device
// Access (SDA): it makes keys, issues, inspects, verifies and fetches access
// tokens, runs operations on devices over TCP or a serial line, and runs a
// simulated device and the authorization service.
//
// Usage:
//
//	sdactl <command> [flags] [arguments]
//	sdactl help [command]        (or: sdactl <command> -h)
//
// Flags may come before or after the arguments; "--" ends them.
//
// # Commands
//
//	keys generate  -o FILE [-pub FILE] [-ed25519 | -p384] [-passphrase-file FILE [-scrypt-work-factor N | -openssl]]
//	    Generate a private key (P-256 by default) into a new file, mode 0600,
//	    encrypted when a passphrase is given (encrypted PKCS#8, scrypt and
//	    AES-256-CBC; -openssl for parameters OpenSSL 3 reads); print its
//	    public half, SDA anchor name and thumbprint.
//	keys show      [-pem] [-passphrase-file FILE] KEYFILE
//	    Print a key's type, SDA anchor name ("mbed.ta." + SHA-256 of the
//	    public key), RFC 9679 thumbprint (hex) and public key PEM; -pem prints
//	    the PEM only.
//	token issue    -key FILE -aud AUD... -scope "OPS" -pop FILE [-sub S] [-lifetime D]
//	               [-profile v1|v2] [-kid HEX|thumbprint] [-delegate-depth N [-delegate-ops OPS]]
//	               [-o FILE] [-raw] [-passphrase-file FILE]
//	    Issue a token signed by a trust anchor key, bound to the -pop key
//	    (public key PEM or private key file); base64 unless -raw. With
//	    -profile v2, -scope also takes argument constraints in the form
//	    "token inspect" prints, e.g. 'set-temperature(arg0 in 16..28)', and
//	    -delegate-depth makes the token delegable.
//	token delegate -token FILE -key FILE -to FILE -scope "OPS" (-lifetime D | -until TIME)
//	               [-nbf TIME] [-aud AUD...] [-depth N] [-sub S] [-o FILE] [-raw] [-passphrase-file FILE]
//	    Pass on, offline, a narrower part of a (delegable, v2) token or
//	    delegated token to the -to key: a delegation link signed with -key.
//	    Whatever a device would refuse is refused with its reason
//	    (not-delegable, delegation-depth, not-narrower, delegation-loop),
//	    exit 3.
//	token inspect  TOKENFILE
//	    Decode and print a token WITHOUT verifying it (the output says so):
//	    header alg and kid, claims, scope, cnf thumbprint, RFC 3339 times;
//	    for a delegated token, its chain, link by link.
//	token verify   -anchor FILE|DIR... [-aud AUD] [-pop FILE] [-now TIME] [-leeway D] TOKENFILE
//	    Verify as a device does: anchor, signature, anchor constraints,
//	    a delegated token's chain, audience (with -aud) and time. A failure
//	    prints its reason in parentheses (malformed, unknown-anchor,
//	    anchor-revoked, signature, algorithm-mismatch, anchor-constraint,
//	    not-delegable, delegation-depth, link-signature, not-narrower,
//	    delegation-loop, wrong-audience, expired, not-yet-valid, wrong-pop)
//	    and exits with 3.
//	token fetch    -url URL -credential-file FILE -aud AUD... -scope "OPS" -pop FILE
//	               [-anchor FILE|DIR...] [-timeout D] [-o FILE] [-raw]
//	    Fetch a token from an authorization service's token endpoint.
//	tokens list    -url URL -credential-file FILE [-subject S] [-aud DEVICE] [-limit N] [-json] [-timeout D]
//	    List the tokens the authorization service issued (its ledger, GET
//	    /admin/v1/issued-tokens), page by page: a table (cti, subject,
//	    audiences, scope, issued, expires) or, with -json, the service's
//	    records (with token hashes and anchor key ids). Administrator's key.
//	revoke token   -url URL -credential-file FILE (-cti HEX | -hash HEX) [-reason TEXT] [-json]
//	revoke subject -url URL -credential-file FILE -subject S [-before TIME] [-reason TEXT] [-json]
//	revoke device  -url URL -credential-file FILE -device DEVICE [-reason TEXT] [-json]
//	revoke anchor  -url URL -credential-file FILE -anchor KEYID [-before TIME] [-reason TEXT] [-json]
//	    Revoke one token, a subject's or an anchor key's tokens issued at or
//	    before -before (RFC 3339, default now), or every unexpired token
//	    naming a device (POST /admin/v1/revocations); print the revocation
//	    records that hold it. Administrator's key. A revocation beyond a
//	    device's status update bound is refused (exit 1) with the service's
//	    advice to use a cut-off.
//	revocations list -url URL -credential-file FILE [-limit N] [-json]
//	    List the revocations the service holds (GET /admin/v1/revocations).
//	status show    -url URL -credential-file FILE -aud AUD [-anchor FILE|DIR...] [-o FILE [-raw]]
//	    Fetch the signed status update of a device (GET /v1/status-update,
//	    any valid API key), verify it with -anchor as a device does (a
//	    failure exits with 3 and writes nothing) or mark it UNVERIFIED,
//	    print its issuer, sequence number, time, audience and every entry,
//	    and with -o write it (base64, or raw with -raw) to a new file.
//	status push    -update FILE (and the flags of call) TARGET OPERATION [ARG...]
//	    As call, carrying the status update of -update to the device in the
//	    operation request when the device reports an older one (a device
//	    only takes an update with a request it authorizes); says on stderr
//	    whether it was carried and what the device holds afterwards.
//	call           -token FILE -key FILE [-passphrase-file FILE] [-timeout D] [-data-out FILE]
//	               [-baud N] TARGET OPERATION [ARG...]
//	    Run an operation on a device (-token may be a delegated token, -key
//	    then its last link's key). TARGET is tcp://host:port or the path
//	    of a serial device (SDA serial framing; a serial port, such as
//	    /dev/ttyUSB0, /dev/cu.usbserial-1410 on macOS or COM3 on Windows, is
//	    set to raw mode, 8N1, at -baud, default 115200); a bare host:port
//	    that names no file is a usage error suggesting tcp://. ARGs are typed: int:21,
//	    text:fan, hex:00ff. Prints "status: ..." and "data: ...". Warns on
//	    stderr, before connecting, when the token's (unverified) times say
//	    it has expired or is not yet valid, and calls anyway.
//	device         -anchor FILE|DIR... (-endpoint NAME | -id HEX32) [-listen ADDR]
//	               [-op NAME[=TEXT]...] [-no-builtin] [-max-conns N] [-next-nonce]
//	               [-idle-timeout D] [-frame-timeout D]
//	    Run a simulated device on TCP. Built-in operations: read-data
//	    (answers a JSON reading) and configure (echoes its arguments as
//	    JSON). Prints "listening on tcp://ADDR", then one line per request
//	    with the decision (allowed or denied, status, failed check, reason),
//	    and a "dropped" line for each connection it closes of its own accord
//	    (idle, a stalled request, evicted at the connection limit).
//	authserver     (-store FILE.json | -postgres DSN [-schema NAME]) -key FILE [-listen ADDR]
//	               [-profile v1|v2] [-kid] [-description TEXT] [-passphrase-file FILE]
//	               (-tls-cert FILE -tls-key FILE | -insecure-http [-insecure-http-any-address])
//	               [-admin-listen ADDR [-admin-tls-cert FILE -admin-tls-key FILE]] [-tls-watch DURATION]
//	               [-rate-address R] [-rate-address-burst N] [-rate-key R] [-rate-key-burst N]
//	               [-shutdown-timeout DURATION]
//	authserver     (-store FILE.json | -postgres DSN [-schema NAME]) -init [-admin ID]
//	    Run the authorization service (package policy) on HTTPS, reloading
//	    the certificate on SIGHUP and when its files change, or on plain HTTP
//	    with -insecure-http (loopback only unless -insecure-http-any-address);
//	    prints "listening on https://ADDR" (http://). Serves GET /healthz and
//	    GET /readyz probes on every listener, limits the token endpoint per
//	    client address and per API key (HTTP 429), and on SIGTERM lets
//	    requests in flight finish (-shutdown-timeout) before closing the
//	    store. -init bootstraps a new store: it creates
//	    the administrator subject and API key and prints the key's secret
//	    once on stdout (only its hash is stored), then exits. The directory
//	    of the -store file must exist and be writable, or it fails at start.
//	store export   (-store FILE.json | -postgres DSN [-schema NAME]) [FILE]
//	store import   (-store FILE.json | -postgres DSN [-schema NAME]) FILE
//	    Move a policy store between a JSON file and PostgreSQL: export writes
//	    its records, revocations and ledger as one JSON document (a new file,
//	    or stdout); import checks a document in full and writes it into an
//	    empty store (exit 1 when the store holds records; 3 for an invalid
//	    document or a newer format or schema version).
//	version
//	    Print the module version recorded in the binary ("(devel)" when
//	    none is known), the commit when recorded, and the Go version.
//
// The device owner's commands ("sdactl help admin") manage access through
// the administration API with an administrator's API key; the service is
// named by -url or SDA_URL, the key file by -api-key-file or
// SDA_API_KEY_FILE (a file, never the key itself), and -ca names the CA
// certificates of an https service the system does not trust:
//
//	admin COLLECTION list [-limit N] [-json]
//	admin COLLECTION show [-json] ID
//	admin COLLECTION create (record flags | -f FILE [record flags]) [-what-if [-details N]] [-json]
//	admin COLLECTION update ID (record flags | -f FILE [record flags]) [-what-if [-details N]] [-json]
//	admin COLLECTION delete ID [-what-if [-details N]]
//	    COLLECTION is policies, subjects, devices or api-keys (which has no
//	    update). Records come from flags (policies: -id -name -description
//	    -effect -inactive -users -groups -apps -ops -all-devices -device-ids
//	    -endpoint-names -attr key=v1,v2 -lifetime -valid-from -valid-until
//	    -delegate-depth N -delegate-ops a,b, -ops in the scope text form
//	    such as 'read-data set-temperature(arg0 in 16..28)'; -delegate-depth
//	    lets the holder of a v2 token the policy grants delegate it, 0
//	    removes the delegation; subjects: -id -kind -groups;
//	    devices: -id -endpoint-name -attr key=value) or from a JSON or YAML
//	    file, decoded strictly (an unknown field is refused, naming it).
//	    update changes the fields its flags name and keeps the others (GET,
//	    then PUT with If-Match: a record changed in between is not written,
//	    exit 1, "changed meanwhile; run again"). create does not replace an
//	    existing record, even one created meanwhile (PUT with
//	    If-None-Match: *; exit 1). -what-if writes nothing and
//	    prints the grants the change would add and remove.
//	admin api-keys create -id ID -subject S [-admin] [-json]
//	    Print the new key's secret once, on stdout.
//	admin groups list | show NAME | add-member NAME SUBJECT | remove-member NAME SUBJECT
//	    Groups as the memberships of subjects, changed one at a time and
//	    atomically on the service.
//	admin explain  -subject S -aud AUD... -ops "OPS" [-time T] [-profile v1|v2] [-json]
//	    The decision with its reasons: per device and operation the verdict,
//	    the policies that matched, the deny policies, the policy that chose
//	    the lifetime, and for a denial the near misses with their failed
//	    conditions. Exits with 1 when the request would be denied.
//	admin what-if  -f FILE [-time T] [-profile v1|v2] [-details N] [-json]
//	    The grants (subject, device, operation) that the changes of FILE
//	    would add and remove, summarised by group and device selector.
//	admin diff     -from SEQ [-to SEQ] | A B  [-time T] [-details N] [-json]
//	    The same between two points of the service's change log, or offline
//	    between two store files or export documents.
//	admin test     [-store FILE] [-json] TESTFILE
//	    Run policy tests ("alice may configure rooftop-1", "no junior may
//	    update-firmware anywhere") against the service or, offline, a store
//	    file or export document; exit 1 when a test fails, each failure
//	    explained.
//	admin changes  [-since SEQ] [-limit N] [-json]
//	    The change log: sequence number, kind, id, put or delete.
//
// The commands that call the authorization service (token fetch, tokens
// list, revoke, revocations list, status show, admin) send the API key only over
// https, or plain http to a loopback host, and never follow a redirect
// elsewhere.
//
// Results go to standard output; errors, progress and audit lines to
// standard error. Long-running commands (device, authserver) stop gracefully
// on SIGINT or SIGTERM and then exit with 0.
//
// # Exit codes
//
//	0  success
//	1  the operation failed or was denied: the device answered with a failure
//	   status (verification error, access denied, operation failed, busy),
//	   the authorization service's policies denied the token request, the
//	   administration API refused a key that is not an administrator's
//	   (HTTP 403), the service refused a revocation beyond a status
//	   update bound or a write as a conflict (HTTP 409), "admin create"
//	   found the record already there, "admin explain" explained a denial,
//	   or "admin test" had a test fail
//	2  usage error: unknown command, bad flag or argument
//	3  input or verification error: a key, token or store file that cannot be
//	   read back, a wrong passphrase, a token or status update that does not
//	   verify, a token that does not belong to the -key given, a credential or
//	   request the service rejects (HTTP 400, 401, 410), an unknown device
//	   or record (404)
//	4  I/O or network error: a file that is missing or already exists, a
//	   device, service or database that cannot be reached, a timeout, a
//	   service that is unavailable (5xx), an operation whose outcome is
//	   unknown (sent, but no answer arrived)
//
// # A worked session
//
// The end-to-end tests (TestSession, TestAuthServer) run these commands
// with the built binary (with a lower -scrypt-work-factor, to run fast, and
// -listen 127.0.0.1:0 for the service). Private keys are named NAME.key and
// public keys NAME.pem, as in the README. Keys for the trust anchor and the
// technician, the technician's encrypted with a passphrase:
//
//	$ sdactl keys generate -o anchor.key -pub anchor.pem
//	private key: anchor.key (not encrypted)
//	type:        ECDSA P-256 (ES256)
//	anchor name: mbed.ta.D8D8A322F62D43285B59166B816519B3D328813813C9E600E2EADCEBD63E110E
//	thumbprint:  01aeac901a2abf2ed8c8d7b48cc5c7a6dd6d7a90e60fef7f3314315173f43f84
//	-----BEGIN PUBLIC KEY-----
//	...
//	$ sdactl keys generate -o tech.key -passphrase-file pass.txt
//	$ sdactl keys show -pem -passphrase-file pass.txt tech.key > tech.pem
//
// A token for alice to read and configure hvac-1, inspected (not trusted)
// and verified:
//
//	$ sdactl token issue -key anchor.key -aud ep:hvac-1 -scope "read-data configure" \
//	      -sub alice -pop tech.pem -lifetime 2h -o alice.token
//	$ sdactl token inspect alice.token
//	UNVERIFIED: the signature has not been checked; nothing below is trusted
//	            (use "sdactl token verify" with the trust anchor).
//	size:       308 bytes
//	profile:    v1
//	header:     alg=ES256 kid=-
//	iss:        mbed.ta.D8D8A322F62D43285B59166B816519B3D328813813C9E600E2EADCEBD63E110E
//	sub:        alice
//	aud:        ep:hvac-1
//	scope:      read-data configure
//	iat:        2026-11-24T15:24:51Z
//	nbf:        2026-11-24T15:24:51Z
//	exp:        2026-11-24T17:24:51Z (in 1h59m59s)
//	cti:        31d4d137fdc9a3fc5583f19ed969a0f7
//	cnf:        ECDSA P-256 (ES256), thumbprint c15fdeb7c097...
//	$ sdactl token verify -anchor anchor.pem -aud ep:hvac-1 alice.token
//	valid: signature verified with anchor mbed.ta.D8D8A322F62D...
//	$ sdactl token verify -anchor tech.pem alice.token; echo $?
//	sdactl token verify: invalid token (unknown-anchor): trust: unknown trust anchor: issuer "mbed.ta.D8D8..."
//	3
//
// A simulated device trusting the anchor (in another terminal), and calls:
//
//	$ sdactl device -listen 127.0.0.1:0 -anchor anchor.pem -endpoint hvac-1 -op update-firmware
//	listening on tcp://127.0.0.1:43923
//	2026-11-24T15:24:54Z allowed request=nonce status="success"
//	2026-11-24T15:24:54Z allowed request=operation op=read-data sub="alice" status="success"
//	...
//	$ sdactl call -token alice.token -key tech.key -passphrase-file pass.txt tcp://127.0.0.1:43923 read-data
//	status: success
//	data: {"endpoint":"hvac-1","temperature_c":21.5,"humidity_pct":40}
//	$ sdactl call -token alice.token -key tech.key -passphrase-file pass.txt tcp://127.0.0.1:43923 \
//	      configure int:21 text:fan hex:00ff
//	status: success
//	data: {"operation":"configure","args":[21,"fan",{"hex":"00ff"}]}
//	$ sdactl call -token alice.token -key tech.key -passphrase-file pass.txt tcp://127.0.0.1:43923 update-firmware; echo $?
//	status: access denied
//	sdactl call: device answered "access denied" (status 5): client: device answered access denied
//	1
//
// The device's line for the last call reads
//
//	... denied request=operation op=update-firmware sub="alice" status="access denied" check=scope reason="..."
//
// The authorization service instead of "token issue": bootstrap the store,
// run the service, create alice, hvac-1, a policy and alice's API key
// through the administration API (documented in docs/PROTOCOL.md section 9;
// note the JSON content type), and fetch a token:
//
//	$ sdactl authserver -store store.json -init > admin.apikey
//	$ sdactl authserver -store store.json -key anchor.key -listen 127.0.0.1:8080 -insecure-http &
//	listening on http://127.0.0.1:8080
//	$ A="Authorization: Bearer $(cat admin.apikey)"; J="Content-Type: application/json"
//	$ curl -H "$A" -H "$J" -X PUT http://127.0.0.1:8080/admin/v1/subjects/alice --data '{"id":"alice","kind":"user"}'
//	$ curl -H "$A" -H "$J" -X PUT http://127.0.0.1:8080/admin/v1/devices/0123456789abcdef0123456789abcdef \
//	      --data '{"id":"0123456789abcdef0123456789abcdef","endpoint_name":"hvac-1"}'
//	$ curl -H "$A" -H "$J" -X PUT http://127.0.0.1:8080/admin/v1/policies/roof --data '{"id":"roof",
//	      "status":"active","effect":"allow","subjects":{"users":["alice"]},"operations":[{"name":"read-data"}],
//	      "devices":{"endpoint_names":["hvac-1"]},"token_lifetime_seconds":3600}'
//	$ curl -H "$A" -H "$J" -X POST http://127.0.0.1:8080/admin/v1/api-keys --data '{"id":"alice-key","subject":"alice"}'
//	{"id":"alice-key","subject":"alice","admin":false,"created_at":"...","secret":"sda_..."}
//	$ echo sda_... > alice.apikey
//	$ sdactl token fetch -url http://127.0.0.1:8080 -credential-file alice.apikey -aud ep:hvac-1 \
//	      -scope read-data -pop tech.pem -anchor anchor.pem -o alice.token
//	$ sdactl token fetch -url http://127.0.0.1:8080 -credential-file alice.apikey -aud ep:hvac-1 \
//	      -scope configure -pop tech.pem; echo $?
//	sdactl token fetch: authorization service: client: token service answered HTTP 403 "access_denied": ...
//	1
//
// The owner sees the tokens issued, revokes alice's (her phone was stolen)
// and looks at the status update that technicians will carry to hvac-1
// (TestRevocation runs these):
//
//	$ sdactl tokens list -url http://127.0.0.1:8080 -credential-file admin.apikey
//	CTI                               SUBJECT  AUD        SCOPE      ISSUED                EXPIRES
//	a3ce0371c8f6433eec943717b3e5d499  alice    ep:hvac-1  read-data  2026-12-01T16:31:23Z  2026-12-01T17:31:23Z
//	$ sdactl revoke subject -url http://127.0.0.1:8080 -credential-file admin.apikey -subject alice -reason "phone stolen"
//	KIND     REVOKES        BEFORE                UNTIL                 CREATED               BY     REASON
//	subject  subject alice  2026-12-01T16:31:23Z  2026-12-01T17:31:23Z  2026-12-01T16:31:23Z  admin  phone stolen
//	$ sdactl status show -url http://127.0.0.1:8080 -credential-file alice.apikey -aud ep:hvac-1 \
//	      -anchor anchor.pem -o hvac-1.status
//	verified:   signature verified with anchor mbed.ta.D8D8A322F62D...
//	...
//	seq:        7
//	time:       2026-12-01T16:31:23Z
//	aud:        ep:hvac-1
//	...
//	subject cut-offs (1):
//	  alice: tokens issued at or before 2026-12-01T16:31:23Z
//
// Any technician's visit then carries it to hvac-1 ("sdactl device
// -status-updates" takes updates; TestStatusPush runs this); here alice's
// own request delivers it and is refused by it:
//
//	$ sdactl status push -update hvac-1.status -token alice.token -key tech.key -passphrase-file pass.txt tcp://127.0.0.1:7301 read-data
//	sdactl: calling read-data on tcp://127.0.0.1:7301
//	sdactl: status update seq 7 carried; the device now holds seq 7
//	status: verification error
//
// With -admin-listen 127.0.0.1:8081 the administration API moves to that
// address (the curl lines above then use it) and -listen keeps the token
// endpoint and the trust anchors only.
//
// # Security considerations
//
// Private keys are never printed, and "keys generate -o -" is refused.
// Passphrases and API keys are read from files (or stdin with "-"), never
// from the command line, where other users could read them. Every file
// sdactl writes is created new with mode 0600; existing files are never
// overwritten. Every read is bounded. "token inspect" shows a token's
// claims without trusting them and says so; only "token verify" and the
// device decide. "token delegate" reads the token it delegates without
// verifying it: it refuses what a device would refuse, but a token that is
// not genuine makes a delegation no device accepts. The simulated device and the authorization service are
// for development and tests: the service speaks plain HTTP, so run it on
// loopback or behind TLS. A PostgreSQL password belongs in PGPASSWORD or
// ~/.pgpass, not in the DSN on the command line.
package main
