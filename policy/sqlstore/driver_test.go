package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
)

// The tests reach PostgreSQL through database/sql, as production code does.
// github.com/jackc/pgx/v5/stdlib cannot be built with the module's current
// go.sum (it needs github.com/jackc/puddle/v2 through pgxpool), so the
// tests register this minimal database/sql driver over a single pgx.Conn.
// It supports exactly what Store uses: Exec, Query and transactions with
// isolation level and read-only mode.
const testDriverName = "sda-test-pgx"

func init() { sql.Register(testDriverName, testDriver{}) }

type testDriver struct{}

func (testDriver) Open(dsn string) (driver.Conn, error) {
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		return nil, err
	}
	return &testConn{c: c}, nil
}

type testConn struct {
	c  *pgx.Conn
	tx pgx.Tx
}

var (
	_ driver.ConnBeginTx       = (*testConn)(nil)
	_ driver.ExecerContext     = (*testConn)(nil)
	_ driver.QueryerContext    = (*testConn)(nil)
	_ driver.NamedValueChecker = (*testConn)(nil)
)

func (c *testConn) Prepare(string) (driver.Stmt, error) {
	return nil, errors.New("test driver: prepared statements are not supported")
}

func (c *testConn) Close() error { return c.c.Close(context.Background()) }

func (c *testConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *testConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	var o pgx.TxOptions
	switch sql.IsolationLevel(opts.Isolation) {
	case sql.LevelDefault:
	case sql.LevelRepeatableRead:
		o.IsoLevel = pgx.RepeatableRead
	case sql.LevelSerializable:
		o.IsoLevel = pgx.Serializable
	case sql.LevelReadCommitted:
		o.IsoLevel = pgx.ReadCommitted
	default:
		return nil, fmt.Errorf("test driver: isolation level %d", opts.Isolation)
	}
	if opts.ReadOnly {
		o.AccessMode = pgx.ReadOnly
	}
	tx, err := c.c.BeginTx(ctx, o)
	if err != nil {
		return nil, err
	}
	c.tx = tx
	return c, nil
}

func (c *testConn) Commit() error {
	tx := c.tx
	c.tx = nil
	return tx.Commit(context.Background())
}

func (c *testConn) Rollback() error {
	tx := c.tx
	c.tx = nil
	return tx.Rollback(context.Background())
}

func (c *testConn) CheckNamedValue(*driver.NamedValue) error { return nil }

func args(nv []driver.NamedValue) []any {
	out := make([]any, len(nv))
	for i, v := range nv {
		out[i] = v.Value
	}
	return out
}

func (c *testConn) ExecContext(ctx context.Context, q string, nv []driver.NamedValue) (driver.Result, error) {
	tag, err := c.c.Exec(ctx, q, args(nv)...)
	if err != nil {
		return nil, err
	}
	return driver.RowsAffected(tag.RowsAffected()), nil
}

func (c *testConn) QueryContext(ctx context.Context, q string, nv []driver.NamedValue) (driver.Rows, error) {
	r, err := c.c.Query(ctx, q, args(nv)...)
	if err != nil {
		return nil, err
	}
	return &testRows{r: r}, nil
}

type testRows struct{ r pgx.Rows }

func (r *testRows) Columns() []string {
	fd := r.r.FieldDescriptions()
	out := make([]string, len(fd))
	for i, f := range fd {
		out[i] = f.Name
	}
	return out
}

func (r *testRows) Close() error {
	r.r.Close()
	return r.r.Err()
}

func (r *testRows) Next(dest []driver.Value) error {
	if !r.r.Next() {
		if err := r.r.Err(); err != nil {
			return err
		}
		return io.EOF
	}
	vals, err := r.r.Values()
	if err != nil {
		return err
	}
	for i, v := range vals {
		switch x := v.(type) {
		case int32:
			dest[i] = int64(x)
		case int16:
			dest[i] = int64(x)
		default:
			dest[i] = v
		}
	}
	return nil
}
