package main

import (
	"fmt"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/teamgate/teamgate/sync/store"
)

// secretMarker starts every secret value the config fuzzer uses, so that
// even a partial echo (YAML type errors quote the first seven characters of
// a value) is caught.
const secretMarker = "S3CRET"

// secretKeys are the keys whose values are secrets, by their last element.
var secretKeys = map[string]bool{"client_secret": true, "secret": true, "api_token": true, "master_key": true}

// dbURLTemplate is the one database.url spelling the fuzzer may put a
// secret in: as the password, which is what operators do.
const dbURLTemplate = "postgres://teamgate:${S}@db.internal:5432/teamgate?sslmode=require"

// secretsOnlyAtSecretKeys reports whether every ${S} in doc is the value
// (or a list item) of a secret key, or the password of dbURLTemplate. A doc
// that puts the secret elsewhere (server.listen: ${S}) may legitimately
// quote it in an error about that key.
func secretsOnlyAtSecretKeys(doc []byte) bool {
	var root yaml.Node
	if yaml.Unmarshal(doc, &root) != nil {
		return !strings.Contains(string(doc), "${S}") // unparsable: nothing is expanded
	}
	ok := true
	var walk func(n *yaml.Node, key string)
	walk = func(n *yaml.Node, key string) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, key)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], n.Content[i].Value)
			}
		case yaml.AliasNode:
			ok = ok && !strings.Contains(string(doc), "${S}") // aliases may copy the secret anywhere
		case yaml.ScalarNode:
			if !strings.Contains(n.Value, "${S}") {
				return
			}
			if !(secretKeys[key] || (key == "url" && n.Value == dbURLTemplate)) {
				ok = false
			}
		}
	}
	walk(&root, "")
	return ok
}

// FuzzParseConfig feeds the config loader arbitrary YAML with a secret in
// the environment. Properties: it never panics; what it accepts validates;
// and when the secret is referenced only from secret keys, neither the
// error nor the database URL as teamgate logs it shows any part of it.
//
// Seeds: testdata/fuzz/FuzzParseConfig and the documents below.
func FuzzParseConfig(f *testing.F) {
	full := `
server: {public_url: "https://llm.example.com"}
entra: {tenant_id: tid, client_id: cid, client_secret: "${S}"}
session: {secret: "${S}"}
admin: {api_token: "${S}"}
database: {url: "` + dbURLTemplate + `"}
`
	for _, s := range []struct{ doc, secret string }{
		{validYAML, "x"},
		{full, strings.Repeat("k", 40)},
		{full, "short"},
		{full, "pa/ss@wo#rd?"},
		{full, "true"},
		{full, "~"},
		{"session:\n  secret: [\"${S}\", \"${S}-old\"]\n", "0123456789abcdef0123456789abcdef"},
		{"session:\n  secret: []\n", ""},
		{"session:\n  secret: [1, [2]]\n", ""},
		{"entra:\n  client_secret: ${S}\n", "{a: b}"},
		{"admin:\n  api_token: ${S}\n", "abc"},
		{"server:\n  listen: ${S}\n", "nope"},
		{"", ""},
	} {
		f.Add([]byte(s.doc), s.secret)
	}
	f.Fuzz(func(t *testing.T, doc []byte, secret string) {
		value := secretMarker + secret
		env := mapEnv(map[string]string{"S": value, "SECRET": value, "SESSION": value})
		cfg, err := parseConfig("fuzz.yaml", doc, env)
		if err == nil {
			if verr := cfg.Validate(); verr != nil {
				t.Fatalf("accepted a config that does not validate: %v", verr)
			}
		}
		if strings.Contains(string(doc), secretMarker) || !secretsOnlyAtSecretKeys(doc) {
			return
		}
		if err != nil && strings.Contains(err.Error(), secretMarker) {
			t.Fatalf("the error shows the secret:\n%v", err)
		}
		if logged := store.RedactURL(cfg.Database.URL); strings.Contains(logged, secretMarker) {
			t.Fatalf("the logged database URL shows the password: %s", logged)
		}
	})
}

// session.secret as a list: the first signs, all verify; each entry is
// checked and named by position.
func TestParseConfigSessionSecretList(t *testing.T) {
	long := func(c string) string { return strings.Repeat(c, 32) }
	tests := []struct {
		name     string
		yaml     string
		wantErr  string
		wantPrev int
	}{
		{"a string", "session:\n  secret: \"" + long("a") + "\"\n", "", 0},
		{"a list of one", "session:\n  secret: [\"" + long("a") + "\"]\n", "", 0},
		{"a list of three", fmt.Sprintf("session:\n  secret:\n    - %q\n    - %q\n    - %q\n", long("a"), long("b"), long("c")), "", 2},
		{"a short old secret is named by position", fmt.Sprintf("session:\n  secret: [%q, \"short\"]\n", long("a")), "session.secret[1]: must be at least 32 bytes", 0},
		{"an empty list", "session:\n  secret: []\n", "session.secret: the list is empty", 0},
		{"a list of maps", "session:\n  secret: [{a: 1}]\n", "session.secret must be a string or a list of strings", 0},
	}
	base := "entra: {tenant_id: t, client_id: c, client_secret: s}\n"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig("t.yaml", []byte(base+tt.yaml), mapEnv(nil))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Session.Secret != long("a") || len(cfg.Session.PreviousSecrets) != tt.wantPrev {
				t.Errorf("secret %q, previous %q", cfg.Session.Secret, cfg.Session.PreviousSecrets)
			}
		})
	}
}
