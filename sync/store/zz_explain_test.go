package store

import (
	"fmt"
	"strings"
	"testing"

	"github.com/lib/pq"
)

func TestZZExplain(t *testing.T) {
	s, err := Open(t.Context(), "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&search_path=extest")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ss := s.(*sqlStore)
	var ids []string
	for i := 1; i <= 5000; i++ {
		ids = append(ids, fmt.Sprintf("g%d", i))
	}
	variants := []struct {
		q   string
		arg any
	}{
		{"DELETE FROM memberships WHERE user_id = $1 AND source = $3 AND team_id = ANY($2::text[]) RETURNING team_id", pq.Array(ids)},
		{"DELETE FROM memberships WHERE user_id = $1 AND source = $3 AND team_id IN (SELECT unnest($2::text[])) RETURNING team_id", pq.Array(ids)},
		{"DELETE FROM memberships WHERE user_id = $1 AND source = $3 AND team_id = ANY(ARRAY(SELECT jsonb_array_elements_text($2::jsonb))) RETURNING team_id", encodeList(ids)},
		{"DELETE FROM memberships m USING (SELECT DISTINCT value FROM jsonb_array_elements_text($2::jsonb) AS e(value)) e WHERE m.team_id = e.value AND m.user_id = $1 AND m.source = $3 RETURNING team_id", encodeList(ids)},
		{"DELETE FROM memberships WHERE (team_id, user_id) IN (SELECT value, $1 FROM jsonb_array_elements_text($2::jsonb) AS e(value)) AND source = $3 RETURNING team_id", encodeList(ids)},
	}
	for _, v := range variants {
		tx, _ := ss.w.Beginx()
		var lines []string
		if err := tx.Select(&lines, "EXPLAIN ANALYZE "+v.q, "u1", v.arg, "entra"); err != nil {
			t.Fatal(err)
		}
		tx.Rollback()
		t.Logf("%s\n%s", v.q, strings.Join(lines, "\n"))
	}
}
