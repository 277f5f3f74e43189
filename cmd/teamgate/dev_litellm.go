package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/teamgate/teamgate/sync/litellmfake"
)

// devMasterKey is the fake LiteLLM's master key in `teamgate dev
// --litellm-fake`: fixed, so curl commands keep working across runs. It
// guards nothing but an in-memory fake on a loopback port.
const devMasterKey = "sk-teamgate-dev"

// startLiteLLMFake serves an in-process fake LiteLLM on a loopback port and
// returns its URL; it is both the upstream (any other path answers with
// what it received) and the target of provisioning.
func (d *devEnv) startLiteLLMFake() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	d.litellm = litellmfake.New(devMasterKey)
	d.litellmURL = "http://" + ln.Addr().String()
	d.goServe(&http.Server{Handler: d.litellm, ReadHeaderTimeout: 10 * time.Second}, ln)
	return d.litellmURL, nil
}

// litellmWelcome tells the developer how to look at what was provisioned.
func (d *devEnv) litellmWelcome() string {
	if d.litellm == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  Fake LiteLLM:      %s (master key %s); sign in, then:\n", d.litellmURL, devMasterKey)
	fmt.Fprintf(&b, "    curl -H 'Authorization: Bearer %s' '%s/user/info?user_id=<object id>'\n", devMasterKey, d.litellmURL)
	fmt.Fprintf(&b, "    curl -H 'Authorization: Bearer %s' '%s/team/info?team_id=<group id>'\n", devMasterKey, d.litellmURL)
	fmt.Fprintf(&b, "  Outbox:            curl -H 'Authorization: Bearer %s' %s/teamgate/api/outbox\n\n", d.adminToken, d.publicURL)
	return b.String()
}

// flagGiven reports whether the flag was set on the command line.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}
