package policy

import (
	"bytes"
	"log/slog"
	"testing"
)

// TestAuditListFormat: a list in an audit event (auditList) is written
// by slog's text and JSON handlers byte for byte as the []string it
// holds: the text handler's "[a b]", quoted when needed, and a JSON
// array (null when nil).
func TestAuditListFormat(t *testing.T) {
	lists := [][]string{nil, {}, {"ep:hvac-1"}, {"ep:a", "id:0123456789abcdef0123456789abcdef"}, {`a "b"`, "c=d", "é\n"}}
	handlers := map[string]func(*bytes.Buffer) slog.Handler{
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	}
	for name, h := range handlers {
		for _, list := range lists {
			var want, got bytes.Buffer
			slog.New(h(&want)).LogAttrs(t.Context(), slog.LevelInfo, "m", slog.Any("aud", list))
			slog.New(h(&got)).LogAttrs(t.Context(), slog.LevelInfo, "m", slog.Any("aud", auditList(list)))
			w, g := want.Bytes()[bytes.Index(want.Bytes(), []byte("aud")):], got.Bytes()[bytes.Index(got.Bytes(), []byte("aud")):]
			if !bytes.Equal(w, g) {
				t.Errorf("%s handler, %q: wrote %s, want %s", name, list, g, w)
			}
		}
	}
}
