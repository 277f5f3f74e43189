package gateway

import (
	"fmt"

	"github.com/gorilla/securecookie"
	"gopkg.in/yaml.v3"
)

// session.secret is one string or a list of them. The first entry signs and
// encrypts new cookies; every entry is accepted when reading one. Rotating
// the secret therefore takes two configuration changes and signs nobody
// out: put the new secret first and keep the old one after it, then drop the
// old one once session.lifetime has passed (no cookie it signed is still
// alive by then).

// Secrets returns every session secret, the signing one first.
func (c SessionConfig) Secrets() []string {
	return append([]string{c.Secret}, c.PreviousSecrets...)
}

// UnmarshalYAML accepts session.secret as a string or as a list of
// strings; every other key decodes as usual.
func (c *SessionConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain SessionConfig // the same fields without this method
	if n.Kind != yaml.MappingNode {
		return n.Decode((*plain)(c))
	}
	m := *n
	m.Content = append([]*yaml.Node(nil), n.Content...)
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != "secret" || m.Content[i+1].Kind != yaml.SequenceNode {
			continue
		}
		seq := m.Content[i+1]
		var list []string
		if err := seq.Decode(&list); err != nil {
			return fmt.Errorf("line %d: session.secret must be a string or a list of strings", seq.Line)
		}
		if len(list) == 0 {
			return fmt.Errorf("line %d: session.secret: the list is empty", seq.Line)
		}
		// Decode the first entry as if it had been written alone; keep its
		// line so errors still point at it.
		first := *seq.Content[0]
		m.Content[i+1] = &first
		c.PreviousSecrets = list[1:]
	}
	return m.Decode((*plain)(c))
}

// validateSecrets checks every secret of the list, naming its position.
func (c SessionConfig) validateSecrets() []error {
	var errs []error
	for i, s := range c.Secrets() {
		key := "session.secret"
		if len(c.PreviousSecrets) > 0 {
			key = fmt.Sprintf("session.secret[%d]", i)
		}
		if n := len(s); n < minSecretBytes {
			errs = append(errs, fmt.Errorf("%s: must be at least %d bytes (got %d)", key, minSecretBytes, n))
		}
	}
	return errs
}

// cookieCodecs derives one codec per secret for a cookie purpose (label),
// the signing secret's first: securecookie.EncodeMulti uses the first,
// DecodeMulti tries them in order.
func cookieCodecs(cfg SessionConfig, label string) []*securecookie.SecureCookie {
	var codecs []*securecookie.SecureCookie
	for _, s := range cfg.Secrets() {
		codecs = append(codecs, securecookie.New(
			deriveKey(s, label+" hmac", 64),
			deriveKey(s, label+" aes", 32),
		))
	}
	return codecs
}
