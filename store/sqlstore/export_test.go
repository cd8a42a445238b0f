package sqlstore

import "context"

// Stmt is one single-statement write, for WriteBatch.
type Stmt struct {
	SQL  string
	Args []any
}

// WriteBatch hands the statements to the PostgreSQL backend as one batch, as if they had been
// written concurrently, and returns each one's rows affected and error.
func WriteBatch(ctx context.Context, s *Store, stmts []Stmt) ([]int64, []error) {
	b := s.b.(classifying).backend.(*pgBackend)
	ws := make([]*pgWrite, len(stmts))
	for i, st := range stmts {
		q, args := dialectPostgres.rewrite(st.SQL, st.Args)
		ws[i] = &pgWrite{ctx: ctx, sql: q, args: args, done: make(chan error, 1)}
	}
	b.writeBatch(ws)
	ns, errs := make([]int64, len(ws)), make([]error, len(ws))
	for i, w := range ws {
		errs[i] = <-w.done
		ns[i] = w.n
	}
	return ns, errs
}

// ClassifyPG is classifyPG.
var ClassifyPG = classifyPG

// MigrationStatements returns the statements of the dialect's migrations up to version upTo.
func MigrationStatements(dialectName string, upTo int) ([][]string, []string, error) {
	d := dialectSQLite
	if dialectName == "postgres" {
		d = dialectPostgres
	}
	ms, err := d.migrations()
	if err != nil {
		return nil, nil, err
	}
	var stmts [][]string
	var names []string
	for _, m := range ms {
		if m.version <= upTo {
			stmts = append(stmts, m.stmts)
			names = append(names, m.name)
		}
	}
	return stmts, names, nil
}
