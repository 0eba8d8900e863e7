package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/securedeviceaccess/sda/client"
)

// Bounds of what sdactl reads from an authorization service's JSON API.
const (
	// maxAPIResponse bounds one answer: a page of at most 1000 ledger
	// records or revocations (docs/PROTOCOL.md section 9, "Administration
	// API"), or a status update.
	maxAPIResponse = 4 << 20
	// maxListPageSize is the largest limit the administration API takes.
	maxListPageSize = 1000
)

// listPageSize is the limit of each page that a list command asks for
// (tests set it lower to exercise paging).
var listPageSize = maxListPageSize

// serviceFlags are the flags of a command that calls an authorization
// service's JSON API with a bearer credential.
type serviceFlags struct {
	url, credFile *string
	timeout       *time.Duration
	// credFlag is the name of the credential file flag.
	credFlag string
	// caFile, when not nil, is the -ca flag: the CA certificates that an
	// https service's certificate must chain to.
	caFile *string
	// fromEnv makes SDA_URL and SDA_API_KEY_FILE the defaults of -url and
	// the credential file flag.
	fromEnv bool
}

func addServiceFlags(fs *flag.FlagSet, what string) serviceFlags {
	return serviceFlags{
		url:      fs.String("url", "", "authorization service base `URL`, https (http only on a loopback host) (required)"),
		credFile: fs.String("credential-file", "", what+" API key `file`, one line (\"-\": stdin) (required)"),
		timeout:  fs.Duration("timeout", client.DefaultHTTPTimeout, "bound on each request"),
		credFlag: "credential-file",
	}
}

// Environment variables that the "admin" commands read when their flags
// are not given.
const (
	envURL        = "SDA_URL"
	envAPIKeyFile = "SDA_API_KEY_FILE"
)

// maxCAFile bounds the -ca file: a bundle of CA certificates.
const maxCAFile = 1 << 20

// addAdminServiceFlags declares the service flags of the "admin" commands:
// -url (default $SDA_URL), -api-key-file (default $SDA_API_KEY_FILE: a
// file, never the key itself), -ca and -timeout.
func addAdminServiceFlags(fs *flag.FlagSet) serviceFlags {
	return serviceFlags{
		url:      fs.String("url", "", "authorization service base `URL`, https (http only on a loopback host) (default $"+envURL+")"),
		credFile: fs.String("api-key-file", "", "administrator's API key `file`, one line (\"-\": stdin) (default $"+envAPIKeyFile+")"),
		caFile:   fs.String("ca", "", "PEM `file` of the CA certificates an https service's certificate must chain to (default: the system's)"),
		timeout:  fs.Duration("timeout", client.DefaultHTTPTimeout, "bound on each request"),
		credFlag: "api-key-file",
		fromEnv:  true,
	}
}

// errInsecureRedirect is a redirect that the API key may not follow.
var errInsecureRedirect = errors.New("the service redirects")

// serviceAPI calls an authorization service's JSON API.
type serviceAPI struct {
	base       *url.URL
	credential string
	hc         *http.Client
}

// check validates the flags without touching files or the network.
func (f serviceFlags) check() (*url.URL, error) {
	if f.fromEnv {
		if *f.url == "" {
			*f.url = os.Getenv(envURL)
		}
		if *f.credFile == "" {
			*f.credFile = os.Getenv(envAPIKeyFile)
		}
	}
	switch {
	case *f.url == "" && f.fromEnv:
		return nil, usageErrorf("-url (or $%s) is required", envURL)
	case *f.credFile == "" && f.fromEnv:
		return nil, usageErrorf("-%s (or $%s) is required", f.credFlag, envAPIKeyFile)
	case *f.url == "":
		return nil, usageErrorf("-url is required")
	case *f.credFile == "":
		return nil, usageErrorf("-%s is required", f.credFlag)
	case *f.timeout <= 0:
		return nil, usageErrorf("-timeout must be positive")
	}
	u, err := url.Parse(*f.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, usageErrorf("-url %q: want http(s)://host[:port][/path]", *f.url)
	}
	if !credentialMayGo(u) {
		return nil, usageErrorf("-url %q: the API key goes only over https (http only to a loopback host)", *f.url)
	}
	return u, nil
}

// open reads the credential and returns the API client.
func (f serviceFlags) open(e *env) (*serviceAPI, error) {
	base, err := f.check()
	if err != nil {
		return nil, err
	}
	cred, err := e.readSecret(*f.credFile)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: *f.timeout}
	if f.caFile != nil && *f.caFile != "" {
		pem, err := e.readFile(*f.caFile, maxCAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, inputErr(fmt.Errorf("-ca %s: no PEM certificate", *f.caFile))
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		hc.Transport = tr
	}
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !credentialMayGo(req.URL) {
			return fmt.Errorf("%w to %q, which is not https (http only on a loopback host)", errInsecureRedirect, req.URL.Redacted())
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &serviceAPI{base: base, credential: cred, hc: hc}, nil
}

// credentialMayGo reports whether a bearer credential may be sent to u:
// https, or http on a loopback host (as client.TokenClient decides).
func credentialMayGo(u *url.URL) bool {
	switch u.Scheme {
	case "https":
		return true
	case "http":
		host := u.Hostname()
		ip := net.ParseIP(host)
		return host == "localhost" || ip != nil && ip.IsLoopback()
	}
	return false
}

// call sends a request to path (below the base URL's path) with query q and
// JSON body in (nil: none), and decodes a 2xx answer into out (nil: the
// body is not read as JSON). An error answer is an *apiError.
func (a *serviceAPI) call(ctx context.Context, method, path string, q url.Values, in, out any) error {
	_, err := a.callHeader(ctx, method, path, q, nil, in, out)
	return err
}

// callHeader is call with request headers hdr added (such as If-Match),
// returning the headers of a 2xx answer (such as its ETag).
func (a *serviceAPI) callHeader(ctx context.Context, method, path string, q url.Values, hdr http.Header, in, out any) (http.Header, error) {
	u := *a.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawPath = ""
	u.RawQuery = q.Encode()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, usageErrorf("-url: %v", err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+a.credential)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if errors.Is(err, errInsecureRedirect) {
		return nil, inputErr(err)
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return nil, ioErr(fmt.Errorf("no answer from %s within the timeout: %w", u.Redacted(), err))
		}
		return nil, ioErr(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIResponse+1))
	if err != nil {
		return nil, ioErr(fmt.Errorf("reading the answer of %s: %w", u.Redacted(), err))
	}
	if resp.StatusCode/100 != 2 {
		return nil, apiFailure(decodeAPIError(resp.StatusCode, data))
	}
	if len(data) > maxAPIResponse {
		return nil, inputErr(fmt.Errorf("the answer of %s is larger than %d bytes", u.Redacted(), maxAPIResponse))
	}
	if out == nil { // an answer without a body, such as 204
		return resp.Header, nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return nil, inputErr(fmt.Errorf("the answer of %s is not the JSON expected: %w", u.Redacted(), err))
	}
	return resp.Header, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// apiError is an error answer of the service (docs/PROTOCOL.md section 9,
// "Errors"). Its text fields come from the server: they are printed
// quoted and shortened, never acted on.
type apiError struct {
	Status    int                 `json:"-"`
	Object    string              `json:"object"`
	Type      string              `json:"type"`
	Message   string              `json:"message"`
	Fields    []client.FieldError `json:"fields"`
	RequestID string              `json:"request_id"`
}

// maxErrorFields bounds the field errors printed.
const maxErrorFields = 8

func decodeAPIError(status int, data []byte) *apiError {
	e := &apiError{}
	if json.Unmarshal(data, e) != nil || e.Object != "error" {
		e = &apiError{}
	}
	e.Status = status
	if len(e.Fields) > maxErrorFields {
		e.Fields = e.Fields[:maxErrorFields]
	}
	return e
}

func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "authorization service answered HTTP %d", e.Status)
	if e.Type != "" {
		fmt.Fprintf(&b, " %s", shortQuote(e.Type))
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", shortQuote(e.Message))
	}
	for _, f := range e.Fields {
		fmt.Fprintf(&b, "; %s: %s", shortQuote(f.Name), shortQuote(f.Message))
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request %s)", shortQuote(e.RequestID))
	}
	return b.String()
}

// shortQuote quotes text from the server, at most 300 bytes of it.
func shortQuote(s string) string {
	const max = 300
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}

// apiFailure maps an error answer to its exit code: a denial (403, an API
// key without the right), a refusal by the service's rules (409, such
// as a revocation beyond a status update bound) and a record changed or
// created meanwhile (412) are 1; any other client error, such as a
// rejected credential (401), request (400, 413, 415), unknown record or
// device (404) or a diff from before the history (410), is 3; a service
// that is unavailable (5xx), or any other answer, is 4.
func apiFailure(e *apiError) error {
	switch {
	case e.Status == http.StatusForbidden, e.Status == http.StatusConflict, e.Status == http.StatusPreconditionFailed:
		return failedErr(e)
	case e.Status >= 400 && e.Status < 500:
		return inputErr(e)
	default:
		return ioErr(e)
	}
}

// serviceExitCodes is the help text of the exit codes of the commands that
// call the service.
const serviceExitCodes = `The service's answers map to exit codes: 1 for a denial (HTTP 403: an API
key that is not an administrator's) and a refusal (HTTP 409: a revocation
that would exceed a device's status update bound, with the service's advice);
3 for a rejected credential (401), request (400), an unknown device (404),
an answer that is not what was expected or a redirect to plain http; 4 for a
service that cannot be reached, times out or is unavailable (5xx).
`
