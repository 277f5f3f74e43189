package gateway

import (
	"net/http"
	"net/textproto"
	"strings"
)

// identityHeaders are the headers teamgate injects, and therefore the
// headers no client may send through it. The upstream trusts them blindly,
// so a client's copy must be removed in every spelling a server might
// treat as the same header: any letter case, and '_' for '-' (several
// frameworks, including the WSGI/ASGI stacks LiteLLM runs on, map both to
// the same name). This is oauth2-proxy's CVE-2025-64484 lesson.
type identityHeaders struct {
	user, email, upn, groups, team string // canonical names to set
	normalized                     []string
	// lengths has bit n set when a normalized name is n bytes long (names
	// of 64 bytes or more set bit 0), so that strip skips most headers
	// after one test.
	lengths uint64
}

func newIdentityHeaders(h HeadersConfig) identityHeaders {
	ih := identityHeaders{
		user:   textproto.CanonicalMIMEHeaderKey(h.User),
		email:  textproto.CanonicalMIMEHeaderKey(h.Email),
		upn:    textproto.CanonicalMIMEHeaderKey(h.PreferredUsername),
		groups: textproto.CanonicalMIMEHeaderKey(h.Groups),
		team:   textproto.CanonicalMIMEHeaderKey(h.TeamID),
	}
	for _, f := range h.fields() {
		ih.own(f.value)
	}
	return ih
}

// own adds name to the headers stripped from every request.
func (ih *identityHeaders) own(name string) {
	ih.normalized = append(ih.normalized, normalizeHeaderName(name))
	ih.lengths |= lengthBit(len(name))
}

func lengthBit(n int) uint64 {
	if n >= 64 {
		n = 0
	}
	return 1 << n
}

// normalizeHeaderName lower-cases a header name and spells '_' as '-'.
// Only ASCII letters fold, exactly as in sameNormalizedHeader: Unicode
// case folding would make "X-\u212Aey" (KELVIN SIGN) equal "x-key" here but
// not there (found by FuzzIdentityHeaderStrip).
func normalizeHeaderName(name string) string {
	b := []byte(name)
	for i, c := range b {
		switch {
		case c == '_':
			b[i] = '-'
		case c >= 'A' && c <= 'Z':
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// owns reports whether name is one of the identity headers in any spelling.
func (ih *identityHeaders) owns(name string) bool {
	if ih.lengths&lengthBit(len(name)) == 0 {
		return false
	}
	for _, n := range ih.normalized {
		if sameNormalizedHeader(name, n) {
			return true
		}
	}
	return false
}

// sameNormalizedHeader compares name with an already normalised name
// without allocating; it runs for every header of every proxied request.
// It compares from the end: names of the same length often share their
// start ("X-Forwarded-Host" and "x-forwarded-user").
func sameNormalizedHeader(name, normalized string) bool {
	if len(name) != len(normalized) {
		return false
	}
	for i := len(name) - 1; i >= 0; i-- {
		c := name[i]
		switch {
		case c == '_':
			c = '-'
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != normalized[i] {
			return false
		}
	}
	return true
}

// strip deletes every identity header from h.
func (ih *identityHeaders) strip(h http.Header) {
	for name := range h {
		if ih.owns(name) {
			delete(h, name)
		}
	}
}

// identityValues backs the values inject sets (see requestHeaderValues).
type identityValues struct {
	user, email, upn, groups, team [1]string
}

// inject sets the identity of a signed-in user on an outbound request whose
// inbound identity headers have already been stripped. The names are
// canonical already (newIdentityHeaders), so the map is written directly:
// Header.Set would re-check each name on every request. The values are
// stored in v, so that the headers cost no allocation of their own (the
// proxy passes its requestInfo's).
func (ih *identityHeaders) inject(h http.Header, p *principalEntry, team string, v *identityValues) {
	setOne(h, ih.user, &v.user, p.principal.UserID)
	if p.email != "" {
		setOne(h, ih.email, &v.email, p.email)
	}
	if p.upn != "" {
		setOne(h, ih.upn, &v.upn, p.upn)
	}
	if p.groups != "" {
		setOne(h, ih.groups, &v.groups, p.groups)
	}
	if team != "" {
		setOne(h, ih.team, &v.team, team)
	}
}

// groupsHeader joins team ids with commas up to max bytes, dropping whole
// ids rather than cutting one: a truncated id would name a different (or no)
// team. Ids that could not travel in a header are skipped.
func groupsHeader(teams []TeamRef, max int) string {
	var b strings.Builder
	for _, t := range teams {
		if t.ID == "" || strings.ContainsRune(t.ID, ',') || !validHeaderValue(t.ID) {
			continue
		}
		need := len(t.ID)
		if b.Len() > 0 {
			need++
		}
		if b.Len()+need > max {
			break
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(t.ID)
	}
	return b.String()
}

// validHeaderValue reports whether v can be sent as a header value as is:
// no control characters (a CR or LF would split the header) and no leading
// or trailing whitespace (which servers trim, changing the value).
func validHeaderValue(v string) bool {
	if v == "" {
		return true
	}
	if v[0] == ' ' || v[0] == '\t' || v[len(v)-1] == ' ' || v[len(v)-1] == '\t' {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// headerValueOrEmpty returns v when it is safe to send, else "" (the header
// is then omitted rather than sent damaged).
func headerValueOrEmpty(v string) string {
	if validHeaderValue(v) {
		return v
	}
	return ""
}

// maxEchoedTeamID bounds how much of a client-supplied team id an error
// message repeats.
const maxEchoedTeamID = 64

// selectTeam decides which team a request acts for. requested holds the
// values of the client's team header. A team the user belongs to is kept;
// any other is refused with 403; without one the user's default team (their
// choice on /teamgate/me, else the first by alias) is used, or none when the
// user has no team.
func selectTeam(p *principalEntry, requested []string) (string, *statusError) {
	var want string
	for _, v := range requested {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if want != "" && v != want {
			return "", &statusError{Status: http.StatusBadRequest, Title: "Conflicting teams",
				Message: "The request names more than one team; send the team header once."}
		}
		want = v
	}
	if want == "" {
		return defaultTeam(&p.principal), nil
	}
	for _, t := range p.principal.Teams {
		if t.ID == want {
			return t.ID, nil
		}
	}
	echo := want
	if len(echo) > maxEchoedTeamID {
		echo = echo[:maxEchoedTeamID] + "…"
	}
	return "", &statusError{Status: http.StatusForbidden, Type: "forbidden", Title: "Not a member of this team",
		Message: "not a member of team " + strings.ToValidUTF8(echo, "")}
}
