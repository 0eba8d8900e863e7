package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/securedeviceaccess/sda/policy"
)

// apiError is an error answer of the administration API, in its JSON
// error format. The console shows its message and its fields as they are.
type apiError struct {
	Status    int                 `json:"code"`
	Type      string              `json:"type"`
	Message   string              `json:"message"`
	Fields    []policy.FieldError `json:"fields"`
	RequestID string              `json:"request_id"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("console: administration API: %d %s: %s", e.Status, e.Type, e.Message)
}

// recorder is the ResponseWriter the console gives the administration
// API's handler: it keeps the status, headers and at most maxAPIResponse
// bytes of the body.
type recorder struct {
	header    http.Header
	status    int
	body      bytes.Buffer
	truncated bool
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *recorder) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if room := maxAPIResponse - w.body.Len(); len(b) > room {
		w.body.Write(b[:max(room, 0)])
		w.truncated = true
		return len(b), nil
	}
	return w.body.Write(b)
}

// call sends one request to the administration API in process, with the
// session's API key as its bearer credential, and decodes a 2xx answer's
// JSON into out (when not nil). Another answer is an *apiError.
func (c *Console) call(ctx context.Context, orig *http.Request, apiKey, method, path string, query url.Values, in, out any) error {
	_, err := c.callHeader(ctx, orig, apiKey, method, path, query, nil, in, out)
	return err
}

// callHeader is call with the request headers hdr (such as If-Match),
// returning the headers of a 2xx answer (such as its ETag).
func (c *Console) callHeader(ctx context.Context, orig *http.Request, apiKey, method, path string, query url.Values, hdr http.Header, in, out any) (http.Header, error) {
	var body io.Reader = http.NoBody
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	u := path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "sda-console")
	if orig != nil {
		req.RemoteAddr = orig.RemoteAddr
		req.Host = orig.Host
	}
	w := &recorder{header: http.Header{}}
	c.admin.ServeHTTP(w, req)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.truncated {
		return nil, fmt.Errorf("console: the administration API's answer to %s %s is larger than %d bytes", method, path, maxAPIResponse)
	}
	if w.status < 200 || w.status > 299 {
		e := &apiError{}
		if json.Unmarshal(w.body.Bytes(), e) != nil || e.Message == "" {
			e.Message = http.StatusText(w.status)
		}
		e.Status = w.status
		return nil, e
	}
	if out == nil || w.status == http.StatusNoContent {
		return w.header, nil
	}
	if err := json.Unmarshal(w.body.Bytes(), out); err != nil {
		return nil, fmt.Errorf("console: decoding the administration API's answer to %s %s: %w", method, path, err)
	}
	return w.header, nil
}

// listPage is the administration API's list format.
type listPage[T any] struct {
	Data       []T  `json:"data"`
	HasMore    bool `json:"has_more"`
	TotalCount int  `json:"total_count"`
}
