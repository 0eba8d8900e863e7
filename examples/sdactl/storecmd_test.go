package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/securedeviceaccess/sda/internal/testenv"
	"github.com/securedeviceaccess/sda/policy"
)

func storeRecords(t *testing.T, path string) *policy.Snapshot {
	t.Helper()
	s, err := policy.OpenFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	snap, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	snap.Seq = 0
	return snap
}

// TestStoreExportImport: a JSON store exported, imported into
// PostgreSQL, exported from there and imported into a new JSON store keeps
// its records; a second import and a newer format are refused.
func TestStoreExportImport(t *testing.T) {
	dsn := os.Getenv("SDA_TEST_POSTGRES_DSN")
	if dsn == "" {
		testenv.Missing(t, "SDA_TEST_POSTGRES_DSN is not set; start PostgreSQL with: eval \"$(bash .ci/postgres.sh start)\"")
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "sdactl_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		db.ExecContext(ctx, `DROP SCHEMA IF EXISTS "`+schema+`" CASCADE`)
	})
	dir := t.TempDir()
	ok(t, dir, "authserver", "-store", "a.json", "-init")
	ok(t, dir, "store", "export", "-store", "a.json", "a.export")
	r := ok(t, dir, "store", "import", "-postgres", dsn, "-schema", schema, "a.export")
	wantContains(t, "stdout", r.stdout, "imported 2 records")
	ok(t, dir, "store", "export", "-postgres", dsn, "-schema", schema, "pg.export")
	ok(t, dir, "store", "import", "-store", "b.json", "pg.export")
	want := storeRecords(t, filepath.Join(dir, "a.json"))
	if len(want.Subjects) != 1 || len(want.APIKeys) != 1 {
		t.Fatalf("source %+v", want)
	}
	if d := cmp.Diff(want, storeRecords(t, filepath.Join(dir, "b.json"))); d != "" {
		t.Fatalf("records (-source +round trip):\n%s", d)
	}
	expect(t, exitFailed, dir, "", "store", "import", "-postgres", dsn, "-schema", schema, "a.export")
	expect(t, exitIO, dir, "", "store", "export", "-store", "a.json", "a.export")
	doc, _ := os.ReadFile(filepath.Join(dir, "a.export"))
	writeFile(t, filepath.Join(dir, "newer.export"), strings.Replace(string(doc), "sda-policy-export/1", "sda-policy-export/2", 1))
	r = expect(t, exitInput, dir, "", "store", "import", "-store", "c.json", "newer.export")
	wantContains(t, "stderr", r.stderr, "version 2")
	expect(t, exitUsage, dir, "", "store", "import", "a.export")
}
