package litellmfake_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/teamgate/teamgate/sync/litellm"
	"github.com/teamgate/teamgate/sync/litellmfake"
)

// The fake behind an httptest server, driven by the real client.
func Example() {
	fake := litellmfake.New("sk-master")
	srv := httptest.NewServer(fake)
	defer srv.Close()

	client, _ := litellm.New(srv.URL, "sk-master")
	ctx := context.Background()
	_ = client.Apply(ctx, litellm.TeamNew("group-1", "Research", litellm.TeamParams{}))
	_ = client.Apply(ctx, litellm.MemberAdd("group-1", "oid-1"))
	_ = client.Apply(ctx, litellm.MemberAdd("group-1", "oid-1")) // already a member: done

	team, _ := fake.Team("group-1")
	fmt.Println(team.Alias, team.Members)

	fake.FailNext("/team/", 1, 429, "5")
	err := client.Apply(ctx, litellm.TeamBlock("group-1"))
	wait, _ := litellm.RetryAfter(err)
	fmt.Println(err != nil, wait)
	// Output:
	// Research [{default_user_id admin} {oid-1 user}]
	// true 5s
}
