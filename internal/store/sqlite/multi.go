package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math/bits"
	"strings"
)

// maxRowsLog2 sets the largest multi-row INSERT: 1<<maxRowsLog2 rows.
// SQLite's per-statement overhead (binding, VDBE setup, database/sql
// round trip) is then paid once per 128 rows instead of once per row.
const maxRowsLog2 = 7

// multiInsert is one INSERT prepared on the writer for 1, 2, 4, … 128 rows
// of VALUES; a batch runs as full 128-row statements plus at most one
// statement of each smaller power of two.
type multiInsert struct {
	cols  int
	stmts [maxRowsLog2 + 1]*sql.Stmt // stmts[k] has 1<<k rows
}

// prepare prepares `head VALUES (?, …), … tail` for each size.
func (m *multiInsert) prepare(ctx context.Context, w *sql.DB, head string, cols int, tail string) error {
	m.cols = cols
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	for k := range m.stmts {
		var b strings.Builder
		b.WriteString(head)
		b.WriteString(" VALUES ")
		for i := range 1 << k {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(row)
		}
		b.WriteString(tail)
		st, err := w.PrepareContext(ctx, b.String())
		if err != nil {
			return fmt.Errorf("%s (%d rows): %w", head, 1<<k, err)
		}
		m.stmts[k] = st
	}
	return nil
}

func (m *multiInsert) close() {
	for _, st := range m.stmts {
		if st != nil {
			st.Close()
		}
	}
}

// exec inserts the rows whose values are args, cols per row, in order.
func (m *multiInsert) exec(ctx context.Context, tx *sql.Tx, args []any) error {
	rows := len(args) / m.cols
	for rows > 0 {
		k := min(bits.Len(uint(rows))-1, maxRowsLog2)
		n := 1 << k
		if _, err := tx.StmtContext(ctx, m.stmts[k]).ExecContext(ctx, args[:n*m.cols]...); err != nil {
			return err
		}
		args, rows = args[n*m.cols:], rows-n
	}
	return nil
}
