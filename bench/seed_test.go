package bench

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tableShape is what a table holds, independent of ids and times: its row count, and for each
// row (sorted) which columns are NULL, the JSON keys of its JSON columns and its fixed columns.
type tableShape struct {
	Rows  int
	Shape []string
}

// seedFixed are the columns whose values must match exactly (neither ids, times nor holders).
var seedFixed = map[string]bool{"source": true, "seq": true, "status": true, "actor": true, "credential_type": true,
	"targets": true, "idx": true, "target": true, "action": true, "detail": true, "type": true, "inflight": true,
	"want_seq": true, "last_seq": true}

// storeShape reads every table of the SQLite file but schema_migrations and sqlite_sequence.
func storeShape(t *testing.T, path string) map[string]tableShape {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	require.NoError(t, err)
	defer func() { _ = db.Close() }()
	rs, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('schema_migrations', 'sqlite_sequence') ORDER BY name`)
	require.NoError(t, err)
	var tables []string
	for rs.Next() {
		var n string
		require.NoError(t, rs.Scan(&n))
		tables = append(tables, n)
	}
	require.NoError(t, rs.Close())
	out := map[string]tableShape{}
	for _, table := range tables {
		rows, err := db.Query("SELECT * FROM " + table)
		require.NoError(t, err)
		cols, err := rows.Columns()
		require.NoError(t, err)
		var sh tableShape
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(t, rows.Scan(ptrs...))
			var parts []string
			for i, c := range cols {
				var desc string
				switch v := vals[i].(type) {
				case nil:
					desc = "NULL"
				case string:
					var obj map[string]any
					if strings.HasPrefix(v, "{") && json.Unmarshal([]byte(v), &obj) == nil {
						desc = "json" + jsonKeys(obj)
					} else if seedFixed[c] {
						desc = fmt.Sprintf("%q", v)
					} else {
						desc = "text"
					}
				default:
					if seedFixed[c] {
						desc = fmt.Sprint(v)
					} else {
						desc = fmt.Sprintf("%T", v)
					}
				}
				parts = append(parts, c+"="+desc)
			}
			sh.Shape = append(sh.Shape, strings.Join(parts, " "))
			sh.Rows++
		}
		require.NoError(t, rows.Close())
		sort.Strings(sh.Shape)
		out[table] = sh
	}
	return out
}

// jsonKeys lists an object's keys, nested objects and arrays of objects included.
func jsonKeys(obj map[string]any) string {
	var keys []string
	for k, v := range obj {
		switch x := v.(type) {
		case map[string]any:
			k += jsonKeys(x)
		case []any:
			if len(x) > 0 {
				if o, ok := x[0].(map[string]any); ok {
					k += "[" + jsonKeys(o) + "]"
				}
			}
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return "{" + strings.Join(keys, ",") + "}"
}

// TestSeedMatchesGateway checks the seeder writes what the gateway writes: one real password
// rotation of three RiverGen targets through the gateway binary, and one seeded rotation of the
// same source, leave the same rows in every table (same NULLs, same JSON fields, same fixed
// values; ids, times and claim holders differ).
func TestSeedMatchesGateway(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tmp := t.TempDir()
	bin, err := BuildGateway(ctx, tmp)
	require.NoError(t, err)
	v, err := startVendors()
	require.NoError(t, err)
	defer v.Close()
	v.seedRiverGen(3)
	source := riverGenSource("s1", 1, 3, true)

	realPath := filepath.Join(tmp, "real.db")
	g, err := startGateway(ctx, bin, tmp, configSpec{Store: store{Driver: "sqlite", DSN: realPath}, Concurrency: 64,
		Sources: []src{source}, Poll: "10ms"}, v, "")
	require.NoError(t, err)
	id, err := postWait(ctx, g, "s1")
	require.NoError(t, err)
	// The outbox event and the audit of the end are written after the answer: wait for them.
	require.Eventually(t, func() bool {
		st, b, err := g.call(ctx, http.MethodGet, "/v1/audit?rotation_id="+id, nil)
		return err == nil && st == http.StatusOK && strings.Contains(string(b), "rotation.finished")
	}, 10*time.Second, 20*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	g.stop()

	seedPath := filepath.Join(tmp, "seeded.db")
	require.NoError(t, seedStore(ctx, store{Driver: "sqlite"}, seedPath, &seedPlan{Sources: []src{source}, Rotations: 1, Start: time.Now()}))

	real, seeded := storeShape(t, realPath), storeShape(t, seedPath)
	delete(real, "readiness") // /readyz's row: the seeded store has had no gateway yet
	delete(seeded, "readiness")
	assert.Equal(t, real, seeded)
	assert.Equal(t, 1, real["rotations"].Rows)
	assert.Equal(t, 3, real["target_last"].Rows)

	// Both files are what sqlstore opens: the seeded one at the latest schema.
	_, err = os.Stat(seedPath)
	require.NoError(t, err)
}

// TestSeedPlan checks the plan: rotations go to the sources in turn with increasing seqs, ids
// sort by creation, and the last rows are each source's newest rotation.
func TestSeedPlan(t *testing.T) {
	p := &seedPlan{Sources: []src{riverGenSource("a", 1, 2, true), riverGenSource("b", 3, 2, true)}, Rotations: 5, Start: time.Unix(1700000000, 0)}
	var ids []string
	for k := 0; k < p.Rotations; k++ {
		ids = append(ids, p.rotation(k).ID)
	}
	assert.True(t, sort.StringsAreSorted(ids), "ids sort by creation: %v", ids)
	assert.Equal(t, "a", p.rotation(4).Source.Name)
	assert.Equal(t, int64(3), p.rotation(4).Seq)
	assert.Equal(t, int64(2), p.rotation(3).Seq)
	var b seedRows
	_, err := p.rows(0, &b)
	require.NoError(t, err)
	assert.Len(t, b.rotations, 1)
	assert.Len(t, b.targets, 2)
	assert.Len(t, b.audit, 4, "submitted, two target.finished, finished")
	assert.Len(t, b.events, 1)
	seqs, lasts, claims, err := p.last()
	require.NoError(t, err)
	assert.Equal(t, [][]any{{"b", int64(2)}, {"a", int64(3)}}, seqs)
	assert.Len(t, lasts, 4)
	assert.Len(t, claims, 4)
	assert.Equal(t, p.rotation(4).ID, lasts[2][3], "a's targets' last outcome is rotation 4")
}
