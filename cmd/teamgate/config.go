package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/teamgate/teamgate/gateway"
	"github.com/teamgate/teamgate/sync/provision"
	"github.com/teamgate/teamgate/sync/store"
	"github.com/teamgate/teamgate/sync/teamsync"
)

// Config is the whole config file. Each section belongs to the package that
// uses it and validates itself; this file only decodes, expands ${VAR} and
// gathers every problem into one error.
type Config struct {
	gateway.Config  `yaml:",inline"`
	Entra           EntraConfig     `yaml:"entra"`
	Database        store.Config    `yaml:"database"`
	LiteLLMSettings teamsync.Config `yaml:"litellm_settings"`
	Log             LogConfig       `yaml:"log"`
	Sync            SyncConfig      `yaml:"sync"`

	// LiteLLM is where teamgate provisions teams, users and memberships.
	LiteLLM provision.Config `yaml:"litellm"`
}

// EntraConfig is the `entra` section, shared by sign-in (OIDC) and sync (Graph).
type EntraConfig struct {
	TenantID           string        `yaml:"tenant_id"`
	ClientID           string        `yaml:"client_id"`
	ClientSecret       string        `yaml:"client_secret"`
	AuthorityHost      string        `yaml:"authority_host"`
	GraphURL           string        `yaml:"graph_url"`
	ServicePrincipalID string        `yaml:"service_principal_id"`
	NestedGroups       bool          `yaml:"nested_groups"`
	AppGroupsTTL       time.Duration `yaml:"app_groups_ttl"`
	GraphMaxAttempts   int           `yaml:"graph_max_attempts"`
	GraphMaxRetryTime  time.Duration `yaml:"graph_max_retry_time"`
	GraphTimeout       time.Duration `yaml:"graph_timeout"`
}

// SyncConfig is the `sync` section: background reconciliation.
type SyncConfig struct {
	Interval    time.Duration `yaml:"interval"`
	Workers     int           `yaml:"workers"`
	CreateUsers bool          `yaml:"create_users"`
}

// Validate checks the sync section.
func (s SyncConfig) Validate() error {
	var errs []error
	if s.Interval != 0 && s.Interval < time.Second {
		errs = append(errs, fmt.Errorf("sync.interval: must be 0 (off) or at least 1s (got %s)", s.Interval))
	}
	if s.Workers < 1 || s.Workers > 64 {
		errs = append(errs, fmt.Errorf("sync.workers: must be between 1 and 64 (got %d)", s.Workers))
	}
	return errors.Join(errs...)
}

// LogConfig is the `log` section.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// defaultConfig is what an empty file means.
func defaultConfig() Config {
	var c Config
	c.Config.ApplyDefaults()
	c.Entra = EntraConfig{
		AuthorityHost:     "https://login.microsoftonline.com",
		GraphURL:          "https://graph.microsoft.com",
		AppGroupsTTL:      5 * time.Minute,
		GraphMaxAttempts:  4,
		GraphMaxRetryTime: 20 * time.Second,
		GraphTimeout:      30 * time.Second,
	}
	c.Database = store.Defaults()
	c.LiteLLMSettings = teamsync.Defaults()
	c.LiteLLM = provision.Defaults()
	c.Log = LogConfig{Level: "info", Format: "json"}
	c.Sync = SyncConfig{Interval: 5 * time.Minute, Workers: 4}
	// 0 means off for this key, so its default is set here rather than by
	// gateway.Config.ApplyDefaults.
	c.Session.RevalidateAfter = gateway.Duration(gateway.DefaultRevalidateAfter)
	c.Session.RevalidateGrace = gateway.Duration(gateway.DefaultRevalidateGrace)
	return c
}

// Validate reports every problem of every section at once.
func (c Config) Validate() error {
	errs := []error{c.Config.Validate(), c.Entra.Validate(), c.Database.Validate(), c.LiteLLMSettings.Validate(), c.LiteLLM.Validate(), c.Log.Validate(), c.Sync.Validate()}
	return errors.Join(errs...)
}

// Validate checks the entra section.
func (e EntraConfig) Validate() error {
	var errs []error
	required := func(key, val, hint string) {
		if strings.TrimSpace(val) == "" {
			errs = append(errs, fmt.Errorf("entra.%s: required (%s)", key, hint))
		}
	}
	required("tenant_id", e.TenantID, "the Directory (tenant) ID of your Entra tenant")
	required("client_id", e.ClientID, "the Application (client) ID of the app registration")
	required("client_secret", e.ClientSecret, "a client secret of the app registration, e.g. \"${TEAMGATE_CLIENT_SECRET}\"")
	for key, val := range map[string]string{"authority_host": e.AuthorityHost, "graph_url": e.GraphURL} {
		if u, err := url.Parse(val); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("entra.%s: must be an absolute http(s) URL, got %q", key, val))
		}
	}
	if e.TenantID != "" && strings.ContainsAny(e.TenantID, "/?#") {
		errs = append(errs, fmt.Errorf("entra.tenant_id: %q must be a tenant id or domain, not a URL", e.TenantID))
	}
	if e.AppGroupsTTL < 0 {
		errs = append(errs, errors.New("entra.app_groups_ttl: must not be negative"))
	}
	if e.GraphMaxAttempts < 1 || e.GraphMaxAttempts > 10 {
		errs = append(errs, fmt.Errorf("entra.graph_max_attempts: must be between 1 and 10, got %d", e.GraphMaxAttempts))
	}
	if e.GraphMaxRetryTime <= 0 {
		errs = append(errs, errors.New("entra.graph_max_retry_time: must be positive"))
	}
	if e.GraphTimeout <= 0 {
		errs = append(errs, errors.New("entra.graph_timeout: must be positive"))
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// Validate checks the log section.
func (l LogConfig) Validate() error {
	var errs []error
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, l.Level) {
		errs = append(errs, fmt.Errorf("log.level: %q is not one of debug, info, warn, error", l.Level))
	}
	if !slices.Contains([]string{"json", "text"}, l.Format) {
		errs = append(errs, fmt.Errorf("log.format: %q is not one of json, text", l.Format))
	}
	return errors.Join(errs...)
}

// loadConfig reads path, expands ${VAR} from env in string values, decodes
// strictly over the defaults and validates. The error lists every problem.
func loadConfig(path string, env func(string) (string, bool)) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return parseConfig(path, raw, env)
}

func parseConfig(name string, raw []byte, env func(string) (string, bool)) (Config, error) {
	cfg := defaultConfig()
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return Config{}, fmt.Errorf("%s: not valid YAML: %w", name, err)
	}
	if len(root.Content) == 0 { // empty file: defaults only
		return cfg, prefixed(name, cfg.Validate())
	}
	var errs []error
	lines := map[int]string{}
	errs = append(errs, unknownKeys(root.Content[0], reflect.TypeOf(cfg), "", lines)...)
	var unset []string
	expandNode(root.Content[0], env, &unset)
	// Decoding the node (not re-marshalled text) keeps the file's line numbers.
	badKeys := map[string]bool{} // keys whose value could not be decoded
	if err := root.Content[0].Decode(&cfg); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, msg := range te.Errors {
				keyed := keyedMessage(msg, lines)
				if key, _, ok := strings.Cut(keyed, ": "); ok {
					badKeys[key] = true
				}
				errs = append(errs, errors.New(keyed))
			}
		} else {
			errs = append(errs, err)
		}
	}
	// The values are checked even when keys are unknown or mistyped, so one
	// run names every problem. A key that failed to decode still holds its
	// default, so what validation says of it would only repeat the decode
	// error (or contradict it): that part is left out.
	for _, err := range leafErrors(cfg.Validate()) {
		if key, _, ok := strings.Cut(err.Error(), ": "); ok && badKeys[key] {
			continue
		}
		errs = append(errs, err)
	}
	if len(unset) > 0 && errors.Join(errs...) != nil {
		slices.Sort(unset)
		errs = append(errs, fmt.Errorf("note: these environment variables are referenced but not set: %s", strings.Join(slices.Compact(unset), ", ")))
	}
	return cfg, prefixed(name, errors.Join(errs...))
}

// leafErrors flattens errors.Join trees into their single errors.
func leafErrors(err error) []error {
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, leafErrors(e)...)
	}
	return out
}

func prefixed(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: invalid configuration:\n  %s", name, strings.ReplaceAll(err.Error(), "\n", "\n  "))
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandNode replaces ${VAR} in scalar values (never in keys), so a secret
// containing YAML syntax cannot change the document's structure.
func expandNode(n *yaml.Node, env func(string) (string, bool), unset *[]string) {
	if n.Kind == yaml.ScalarNode {
		if !envRef.MatchString(n.Value) {
			return
		}
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			v, ok := env(name)
			if !ok {
				*unset = append(*unset, name)
			}
			return v
		})
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
			n.Tag = "" // plain scalar: resolve the expanded value (e.g. a number)
		}
		return
	}
	for i, c := range n.Content {
		if n.Kind == yaml.MappingNode && i%2 == 0 {
			continue // keys
		}
		expandNode(c, env, unset)
	}
}

// unknownKeys walks a mapping node against the yaml tags of t and reports
// every key t does not have, with its full dotted path and line.
func unknownKeys(n *yaml.Node, t reflect.Type, path string, lines map[int]string) []error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind != yaml.MappingNode || t.Kind() != reflect.Struct {
		return nil // scalars, lists and maps: the decoder checks their types
	}
	fields := yamlFields(t)
	var errs []error
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		full := key.Value
		if path != "" {
			full = path + "." + key.Value
		}
		lines[key.Line] = full
		ft, ok := fields[key.Value]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: unknown key (line %d)", full, key.Line))
			continue
		}
		errs = append(errs, unknownKeys(val, ft, full, lines)...)
	}
	return errs
}

// yamlFields maps yaml keys to field types, descending into inline fields.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

var lineMsg = regexp.MustCompile(`^line (\d+): (.*)$`)

// keyedMessage turns yaml's "line 7: cannot unmarshal …" into
// "server.listen: cannot unmarshal … (line 7)", naming the nearest key at or
// above that line.
func keyedMessage(msg string, lines map[int]string) string {
	m := lineMsg.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	var line int
	fmt.Sscan(m[1], &line)
	for l := line; l > 0; l-- {
		if key, ok := lines[l]; ok {
			return fmt.Sprintf("%s: %s (line %d)", key, m[2], line)
		}
	}
	return msg
}
