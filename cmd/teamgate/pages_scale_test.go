package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/fakeentra"
	"github.com/teamgate/teamgate/sync/store"
)

// The admin team list of a tenant with thousands of teams, through the page
// and the real store: counted, paged to the end and searched. 2,100 teams are
// written straight to the store, beside the 255 the demo sign-in creates.
func TestAdminTeamsWithThousandsOfTeams(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		const extra = 2100
		teams := make([]store.Team, extra)
		for i := range teams {
			teams[i] = store.Team{ID: fmt.Sprintf("scale-%04d", i), Alias: fmt.Sprintf("Scale %04d", i), Assigned: true}
		}
		if err := st.InTx(t.Context(), func(tx store.Tx) error {
			_, err := tx.InsertTeams(t.Context(), teams, time.Now())
			return err
		}); err != nil {
			t.Fatal(err)
		}
		adminGroup := fakeentra.DemoID(fakeentra.DemoAdminGroup)
		e := startE2E(t, st, e2eOptions{tweak: func(c *Config) { c.Admin.GroupIDs = []string{adminGroup} }})
		alice := e.browser()
		alice.signIn(e.gw.URL, "/", id("alice"))

		const total = extra + 255
		for _, tc := range []struct {
			query string
			want  []string
		}{
			{"", []string{fmt.Sprintf("1–50 of %d teams · page 1 of 48", total), "All Staff", `rel="next"`}},
			// Aliases sort bytewise: the demo's "Project 001…" come before "Scale 0000…".
			{"?page=48", []string{fmt.Sprintf("2351–%d of %d teams · page 48 of 48", total, total), "Scale 2099", `rel="prev"`}},
			{"?page=30", []string{fmt.Sprintf("1451–1500 of %d teams · page 30 of 48", total), "Scale 1195", "Scale 1244"}},
			{"?q=scale+19", []string{"1–50 of 100 teams · page 1 of 2", "Scale 1900", "Scale 1949"}},
			{"?q=scale+19&page=2", []string{"51–100 of 100 teams · page 2 of 2", "Scale 1950", "Scale 1999"}},
			{"?q=scale-2099", []string{"1 team", "Scale 2099"}},
		} {
			res, body := alice.get(e.gw.URL + "/teamgate/admin" + tc.query)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("/teamgate/admin%s: %d\n%.1500s", tc.query, res.StatusCode, body)
			}
			for _, s := range tc.want {
				if !strings.Contains(body, s) {
					t.Errorf("/teamgate/admin%s does not show %q", tc.query, s)
				}
			}
			if tc.query == "?q=scale+19" && strings.Contains(body, "Scale 1950") {
				t.Error("the first page of the search shows the second page's teams")
			}
		}
	})
}
