package fakeentra_test

import (
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/teamgate/teamgate/sync/fakeentra"
)

// A tenant is an http.Handler: serve it, then tell it where it lives.
func ExampleNew() {
	tenant, err := fakeentra.New(fakeentra.Config{
		TenantID: "tid", ClientID: "cid", ClientSecret: "secret",
		Directory: fakeentra.DemoDirectory(),
	})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(tenant)
	defer srv.Close()
	tenant.SetBaseURL(srv.URL)

	// Point the code under test at these:
	fmt.Println(strings.TrimPrefix(tenant.Issuer(), srv.URL))
	fmt.Println(strings.TrimPrefix(tenant.GraphURL(), srv.URL))
	// Output:
	// /tid/v2.0
	// /graph
}
