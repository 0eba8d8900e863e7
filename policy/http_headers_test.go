package policy

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
)

// TestJSONHeaders: a JSON answer carries exactly its three headers, each
// value a slice of its own (changing one answer's header changes no other
// answer's), set with one allocation for the three.
func TestJSONHeaders(t *testing.T) {
	want := http.Header{
		"Content-Type":           {"application/json"},
		"Cache-Control":          {"no-store"},
		"X-Content-Type-Options": {"nosniff"},
	}
	w := httptest.NewRecorder()
	writeJSONBytes(w, http.StatusOK, []byte(`{}`))
	if got := w.Result().Header; !reflect.DeepEqual(got, want) {
		t.Fatalf("headers %v, want %v", got, want)
	}
	w.Result().Header["Content-Type"][0] = "text/plain"
	w.Result().Header.Add("Cache-Control", "private")
	w2 := httptest.NewRecorder()
	writeJSONBytes(w2, http.StatusOK, []byte(`{}`))
	if got := w2.Result().Header; !reflect.DeepEqual(got, want) {
		t.Fatalf("after another answer's headers were changed: %v, want %v", got, want)
	}
	h := http.Header{}
	if n := testing.AllocsPerRun(100, func() { setJSONHeaders(h) }); n > 1 {
		t.Fatalf("setting the headers of a JSON answer allocates %.0f times, want at most 1", n)
	}
}
