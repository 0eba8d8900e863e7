package sqlstore

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/securedeviceaccess/sda/policy"
)

// million enables BenchmarkSnapshotReload at 1,000,000 policies, which
// writes them to the database once per process (about a minute) and holds
// a few GiB: go test ./policy/sqlstore -run '^$' -bench SnapshotReload
// -sqlstore.million.
var million = flag.Bool("sqlstore.million", false, "run BenchmarkSnapshotReload at 1,000,000 policies too")

// writeBench writes the records of benchSnapshot(n) into the store of
// schema, as one batch, with COPY: Apply would take minutes at 1,000,000.
// It returns the snapshot.
func writeBench(b *testing.B, db *sql.DB, schema string) func(n int) *policy.Snapshot {
	return func(n int) *policy.Snapshot {
		b.Helper()
		ctx := context.Background()
		snap := benchSnapshot(n)
		var rows [][]any
		add := func(c policy.Change) {
			body, err := policy.EncodeRecord(&c)
			if err != nil {
				b.Fatal(err)
			}
			rows = append(rows, []any{string(c.Kind), c.ID, int64(1), false, string(body), uniqueKey(&c)})
		}
		for _, p := range snap.Policies {
			add(policy.PutPolicy(p))
		}
		for _, x := range snap.Subjects {
			add(policy.PutSubject(x))
		}
		for _, x := range snap.Devices {
			add(policy.PutDevice(x))
		}
		conn, err := db.Conn(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, `TRUNCATE "`+schema+`".sda_records`); err != nil {
			b.Fatal(err)
		}
		if err := conn.Raw(func(dc any) error {
			_, err := dc.(*stdlib.Conn).Conn().CopyFrom(ctx, pgx.Identifier{schema, "sda_records"},
				[]string{"kind", "id", "seq", "deleted", "body", "uniq"}, pgx.CopyFromRows(rows))
			return err
		}); err != nil {
			b.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, `UPDATE "`+schema+`".sda_meta SET seq = 1 WHERE id = 1`); err != nil {
			b.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, `VACUUM ANALYZE "`+schema+`".sda_records`); err != nil {
			b.Fatal(err)
		}
		snap.Seq = 1
		return snap
	}
}

// BenchmarkSnapshotReload measures what a following instance that fell
// behind does: Store.Snapshot of n policies (and n/10 users and n/10
// devices) from PostgreSQL, then Engine.Load of it, against Engine.Load of
// the same snapshot held in memory, in turn in the same run. It reports
// s/reload (Snapshot + Load), s/snapshot (Snapshot alone), s/load (Load of
// the snapshot in memory) and ratio-reload/load (target <= 2 at
// 1,000,000). The heap is collected before each side, so that neither
// pays for the other's garbage. n is 10,000 and 100,000, and 1,000,000 with
// -sqlstore.million:
//
//	eval "$(bash .ci/postgres.sh start)"
//	go test ./policy/sqlstore -run '^$' -bench SnapshotReload -sqlstore.million -benchtime 3x -count 3 -timeout 60m
func BenchmarkSnapshotReload(b *testing.B) {
	db, schema := testDB(b)
	ctx := context.Background()
	st, err := Open(ctx, db, schema)
	if err != nil {
		b.Fatal(err)
	}
	write := writeBench(b, db, schema)
	sizes := []int{10000, 100000}
	if *million {
		sizes = append(sizes, 1000000)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("policies=%d", n), func(b *testing.B) {
			snap := write(n)
			var tReload, tSnap, tLoad time.Duration
			k := 0
			for b.Loop() {
				// Each side starts with the other's garbage collected, so
				// that neither pays for the other.
				runtime.GC()
				start := time.Now()
				got, err := st.Snapshot(ctx)
				if err != nil {
					b.Fatal(err)
				}
				tSnap += time.Since(start)
				var e policy.Engine
				if err := e.Load(got); err != nil {
					b.Fatal(err)
				}
				tReload += time.Since(start)
				if len(got.Policies) != len(snap.Policies) {
					b.Fatalf("%d policies read back, want %d", len(got.Policies), len(snap.Policies))
				}
				got, e = nil, policy.Engine{}
				runtime.GC()
				start = time.Now()
				var e2 policy.Engine
				if err := e2.Load(snap); err != nil {
					b.Fatal(err)
				}
				tLoad += time.Since(start)
				k++
			}
			b.ReportMetric(tReload.Seconds()/float64(k), "s/reload")
			b.ReportMetric(tSnap.Seconds()/float64(k), "s/snapshot")
			b.ReportMetric(tLoad.Seconds()/float64(k), "s/load")
			b.ReportMetric(tReload.Seconds()/tLoad.Seconds(), "ratio-reload/load")
		})
	}
}
