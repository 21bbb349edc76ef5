// Package workspace loads and validates envplane.yaml, the file at the root of
// a workspace that names its environments, services, configuration layers,
// flags, secrets and policies, and finds the files each layer stands for.
package workspace

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/tree"
)

// FileName is the workspace file at the root of every workspace.
const FileName = "envplane.yaml"

// Bounds on a workspace: every environment × service is resolved when a
// release is validated and linted, so these keep that work sane.
const (
	MaxEnvironments = 64
	MaxServices     = 64
)

// Workspace is a loaded, validated envplane.yaml plus the file system its
// paths are relative to.
type Workspace struct {
	FS           fs.FS
	Name         string
	Environments []Environment
	Services     []string
	Config       Config
	Flags        []string
	Secrets      Secrets
	Policies     []Policy
	Data         Data
}

// Data is the data: block: where an environment's database URL is in its
// config, and the workspace's anonymisation rules and seed spec.
type Data struct {
	Database string // config key
	Rules    string // file, relative to the workspace
	Seed     string
	Pos      diag.Pos
}

// Environment is one stage of the promotion path.
type Environment struct {
	Name       string
	Data       domain.DataClass
	Protection domain.Protection
	Promotion  *Promotion
	Pos        diag.Pos
}

// Lower reports whether the environment holds only made-up data, which is
// where literal credentials in committed files are tolerated.
func (e Environment) Lower() bool { return e.Data == domain.DataSynthetic }

// Promotion is the gate an environment's releases pass through.
type Promotion struct {
	From      string
	Auto      bool
	Approvals *Approvals
	Checks    []Check
	Checklist []string
	WaitTimer time.Duration
	Freeze    []Freeze
	Webhooks  []Webhook
	Pos       diag.Pos
}

// Freeze is a window when promotions into the environment wait: From/To
// (RFC 3339), or Cron (minute hour day-of-month month day-of-week) starting
// a window of Duration in Timezone.
type Freeze struct {
	From, To time.Time
	Cron     string
	Duration time.Duration
	Timezone string
	Reason   string
}

// Webhook is told of promotion events, signed under the server-side secret
// Secret of the environment.
type Webhook struct {
	URL    string
	Secret string
	Events []string
}

// Approvals says who must approve a promotion.
type Approvals struct {
	Required          int
	Groups            []string
	AllowSelfApproval bool
}

// Check is a promotion gate: policy (built in), http or external.
type Check struct {
	Name         string
	Type         string
	URL          string
	ExpectStatus int           // http: the status that passes (default 200)
	Timeout      time.Duration // http: per attempt (default 10s)
}

// Config describes how an environment's configuration is assembled.
type Config struct {
	Layers    []Layer
	Env       EnvBinding
	Schema    string
	SchemaPos diag.Pos
	Sensitive []string
}

// Layer is one file source. Path may hold a glob and {env}/{service}.
type Layer struct {
	Path     string
	At       string // key path the file's tree is mounted under
	Required bool
	Pos      diag.Pos
}

// UsesServices reports whether any layer applies per service: otherwise
// every service of an environment gets the environment's config.
func (w *Workspace) UsesServices() bool {
	for _, l := range w.Config.Layers {
		if l.UsesService() {
			return true
		}
	}
	return false
}

// UsesService reports whether the layer only applies when a service is resolved.
func (l Layer) UsesService() bool { return strings.Contains(l.Path, "{service}") }

// EnvBinding maps environment variables onto configuration keys.
type EnvBinding struct {
	Prefix    string
	PrefixPos diag.Pos
	Bind      []Bind
	// Select names variables, in order, whose value names the environment
	// when a command is given none (after ENVPLANE_ENV).
	Select []string
}

// Bind maps one variable name to one key path.
type Bind struct {
	Var  string
	Path string
	Pos  diag.Pos
}

// Secrets says where encrypted secrets live and who may open them.
type Secrets struct {
	Dir        string
	Recipients map[string][]string
}

// Policy is a user rule: a CEL expression that must hold.
type Policy struct {
	Name         string
	Environments []string
	Services     []string
	Rule         string
	Message      string
	Severity     string
	Pos          diag.Pos
	RulePos      diag.Pos
	// RuleQuote is 1 when the rule is written in quotes, so columns inside
	// it shift by one.
	RuleQuote int
}

// Environment returns the named environment.
func (w *Workspace) Environment(name string) (Environment, bool) {
	for _, e := range w.Environments {
		if e.Name == name {
			return e, true
		}
	}
	return Environment{}, false
}

// EnvironmentNames lists the environments in promotion order.
func (w *Workspace) EnvironmentNames() []string {
	out := make([]string, len(w.Environments))
	for i, e := range w.Environments {
		out[i] = e.Name
	}
	return out
}

// HasService reports whether name is a declared service.
func (w *Workspace) HasService(name string) bool {
	for _, s := range w.Services {
		if s == name {
			return true
		}
	}
	return false
}

// Load reads and validates envplane.yaml at the root of fsys, reporting every
// problem at once.
func Load(fsys fs.FS) (*Workspace, error) {
	data, err := fs.ReadFile(fsys, FileName)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, diag.List{diag.Errorf(diag.Pos{File: FileName}, "no %s here: run `envplane init` to create one, or use -C DIR", FileName)}
		}
		return nil, diag.List{diag.Errorf(diag.Pos{File: FileName}, "cannot read: %v", err)}
	}
	return Parse(fsys, data)
}

// Parse validates the bytes of an envplane.yaml whose other files live in fsys.
func Parse(fsys fs.FS, data []byte) (*Workspace, error) {
	w, errs := parse(fsys, data)
	if len(errs) > 0 {
		return nil, errs
	}
	return w, nil
}

// LoadPartial is Load that also returns what could be read of a workspace
// with errors (nil when the file is not YAML at all), so that callers can
// check its other parts — its policies — and report every problem at once.
// Only the error says whether the workspace is valid.
func LoadPartial(fsys fs.FS) (*Workspace, error) {
	data, err := fs.ReadFile(fsys, FileName)
	if err != nil {
		_, err := Load(fsys)
		return nil, err
	}
	w, errs := parse(fsys, data)
	if len(errs) > 0 {
		return w, errs
	}
	return w, nil
}

func parse(fsys fs.FS, data []byte) (*Workspace, diag.List) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		return nil, diag.List{tree.YAMLSyntaxError(FileName, data, err)}
	}
	// yaml.Unmarshal would silently ignore what follows the first document,
	// including lines yaml.v3 cuts off after a dedent: read on to be sure.
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == io.EOF:
	case err != nil:
		return nil, diag.List{tree.YAMLSyntaxError(FileName, data, err)}
	default:
		return nil, diag.List{diag.Errorf(diag.Pos{File: FileName, Line: extra.Line, Column: extra.Column},
			"%s holds one YAML document; found a second one", FileName)}
	}
	p := &parser{}
	w := &Workspace{FS: fsys}
	if len(doc.Content) == 0 {
		return nil, diag.List{diag.Errorf(diag.Pos{File: FileName, Line: 1, Column: 1}, "empty workspace file: at least `environments:` is required")}
	}
	p.workspace(doc.Content[0], w)
	p.validate(w)
	if len(p.errs) > 0 {
		return w, p.errs.Sort()
	}
	return w, nil
}

// envNameRE matches environment names: what `^[a-z][a-z0-9-]{0,62}$`
// matches, checked by hand. As a package-level regexp the bounded
// repetition compiled to a 60-fold program at init: 0.3 ms and 720
// allocations before main in every command (docs/PERFORMANCE.md §8).
var envNameRE envName

type envName struct{}

func (envName) MatchString(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

var (
	varNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`) })
	keyPathRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[^.\s]+(\.[^.\s]+)*$`) })
	placeRE   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\{[^}]*\}`) })
)

func (p *parser) validate(w *Workspace) {
	if len(w.Environments) == 0 && !p.sawEnvironments {
		p.errorf(diag.Pos{File: FileName, Line: 1, Column: 1}, "missing `environments:`: list at least one environment")
	}
	seen := map[string]int{}
	var known []string
	for i, e := range w.Environments {
		if !envNameRE.MatchString(e.Name) {
			p.errorf(e.Pos, "environment name %q: use lower-case letters, digits and dashes, starting with a letter", e.Name)
		}
		if j, dup := seen[e.Name]; dup {
			p.errorf(e.Pos, "environment %q is listed twice (first at line %d)", e.Name, w.Environments[j].Pos.Line)
			continue
		}
		seen[e.Name] = i
		known = append(known, e.Name)
	}
	knownList := strings.Join(known, ", ")
	// Defaults follow the position on the promotion path: the first stage is
	// open and synthetic, the last is live and restricted.
	for i := range w.Environments {
		e := &w.Environments[i]
		last := i == len(w.Environments)-1 && i > 0
		data, protection := domain.DataAnonymized, domain.ProtectionGuarded
		switch {
		case i == 0:
			data, protection = domain.DataSynthetic, domain.ProtectionOpen
		case last:
			data, protection = domain.DataLive, domain.ProtectionRestricted
		}
		if e.Data == "" {
			e.Data = data
		}
		if e.Protection == "" {
			e.Protection = protection
		}
		if pr := e.Promotion; pr != nil {
			j, ok := seen[pr.From]
			switch {
			case pr.From == "":
				p.errorf(pr.Pos, "environment %q: promotion needs `from:`, the environment releases come from", e.Name)
			case !ok:
				p.errorf(pr.Pos, "environment %q: promotion from unknown environment %q (known: %s)", e.Name, pr.From, knownList)
			case j >= i:
				p.errorf(pr.Pos, "environment %q: promotion from %q must come from an environment listed before it", e.Name, pr.From)
			}
		}
	}
	svc := map[string]bool{}
	for _, s := range w.Services {
		svc[s] = true
	}
	for i := range w.Config.Layers {
		w.Config.Layers[i].Path = cleanPath(w.Config.Layers[i].Path)
		l := w.Config.Layers[i]
		p.checkPath(l.Pos, l.Path, "layer")
		for _, m := range placeRE().FindAllString(l.Path, -1) {
			if m != "{env}" && m != "{service}" {
				p.errorf(l.Pos, "layer %q: unknown placeholder %s (use {env} or {service})", l.Path, m)
			}
		}
		if _, err := path.Match(strings.NewReplacer("{env}", "x", "{service}", "x").Replace(l.Path), ""); err != nil {
			p.errorf(l.Pos, "layer %q: bad glob pattern", l.Path)
		}
		if l.At != "" && !keyPathRE().MatchString(l.At) {
			p.errorf(l.Pos, "layer %q: `at: %s` must be a dotted key path like agents or server.tls", l.Path, l.At)
		}
	}
	for _, b := range w.Config.Env.Bind {
		if !varNameRE().MatchString(b.Var) {
			p.errorf(b.Pos, "env.bind: %q is not a valid environment variable name", b.Var)
		}
		if !keyPathRE().MatchString(b.Path) {
			p.errorf(b.Pos, "env.bind: %s maps to %q, expected a dotted key path like server.port", b.Var, b.Path)
		}
	}
	if w.Config.Env.Prefix != "" && !varNameRE().MatchString(w.Config.Env.Prefix) {
		p.errorf(w.Config.Env.PrefixPos, "env.prefix %q is not a valid environment variable prefix", w.Config.Env.Prefix)
	}
	if w.Config.Schema != "" {
		w.Config.Schema = cleanPath(w.Config.Schema)
		p.checkPath(w.Config.SchemaPos, w.Config.Schema, "schema")
	}
	for env := range w.Secrets.Recipients {
		if _, ok := seen[env]; !ok {
			p.errorf(p.recipientPos[env], "secrets.recipients: unknown environment %q (known: %s)", env, knownList)
		}
	}
	names := map[string]bool{}
	for _, pol := range w.Policies {
		if pol.Name == "" {
			p.errorf(pol.Pos, "policy needs a `name:`")
		} else if names[pol.Name] {
			p.errorf(pol.Pos, "policy %q is defined twice", pol.Name)
		}
		names[pol.Name] = true
		if strings.TrimSpace(pol.Rule) == "" {
			p.errorf(pol.Pos, "policy %q needs a `rule:` (a CEL expression over config, env, service, environment)", pol.Name)
		}
		for _, e := range pol.Environments {
			if _, ok := seen[e]; !ok {
				p.errorf(pol.Pos, "policy %q: unknown environment %q (known: %s)", pol.Name, e, knownList)
			}
		}
		for _, s := range pol.Services {
			if !svc[s] {
				p.errorf(pol.Pos, "policy %q: unknown service %q", pol.Name, s)
			}
		}
	}
}

// cleanPath tidies a relative path written ./config/x.yaml or config//x.yaml
// into config/x.yaml. Paths that leave the workspace (..) or are absolute
// are left as written, for checkPath to refuse.
func cleanPath(p string) string {
	if p == "" || path.IsAbs(p) || strings.HasPrefix(p, "\\") {
		return p
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return p
		}
	}
	c := path.Clean(p)
	if c == "." {
		return p
	}
	return c
}

func (p *parser) checkPath(pos diag.Pos, pth, what string) {
	switch {
	case pth == "":
		p.errorf(pos, "%s path is empty", what)
	case path.IsAbs(pth) || strings.HasPrefix(pth, "\\"):
		p.errorf(pos, "%s %q: paths are relative to the workspace root", what, pth)
	case pth != path.Clean(pth) || pth == ".." || strings.HasPrefix(pth, "../"):
		p.errorf(pos, "%s %q: use a path to a file inside the workspace (no ..)", what, pth)
	}
}

// LayerFiles returns the file a layer stands for in (env, service): nil when
// the layer names {service} and no service is resolved, or when an optional
// layer matches nothing. A glob matching several files is ambiguous.
func (w *Workspace) LayerFiles(l Layer, env, service string) (string, error) {
	if service == "" && l.UsesService() {
		return "", nil
	}
	pattern := strings.ReplaceAll(strings.ReplaceAll(l.Path, "{env}", env), "{service}", service)
	var matches []string
	if strings.ContainsAny(pattern, "*?[") {
		found, err := fs.Glob(w.FS, pattern)
		if err != nil {
			return "", diag.Errorf(l.Pos, "layer %q: bad glob pattern: %v", l.Path, err)
		}
		for _, m := range found {
			st, err := fs.Stat(w.FS, m)
			if isLoop(err) {
				return "", loopError(l, m)
			}
			if err == nil && !st.IsDir() {
				matches = append(matches, m)
			}
		}
	} else if st, err := fs.Stat(w.FS, pattern); err == nil && !st.IsDir() {
		matches = []string{pattern}
	} else if isLoop(err) {
		return "", loopError(l, pattern)
	}
	switch len(matches) {
	case 0:
		if l.Required {
			return "", diag.Errorf(l.Pos, "layer %q is required but %s does not exist", l.Path, pattern)
		}
		return "", nil
	case 1:
		return matches[0], nil
	}
	return "", diag.Errorf(l.Pos, "layer %q is ambiguous in %s: it matches %s; rename or remove all but one", l.Path, env, strings.Join(matches, ", "))
}

// MissingOwnFile reports whether env gets no file of its own: the
// workspace has layers naming {env}, and none of them stands for a file in
// env, alone or for any service. expected lists the paths those layers
// would read ({service} left as written). A layer that is broken in env
// (ambiguous, a loop) is reported as such and counts as present here.
func (w *Workspace) MissingOwnFile(env string) (expected []string, missing bool) {
	services := append([]string{""}, w.Services...)
	for _, l := range w.Config.Layers {
		if !strings.Contains(l.Path, "{env}") {
			continue
		}
		expected = append(expected, strings.ReplaceAll(l.Path, "{env}", env))
		for _, s := range services {
			if s == "" && l.UsesService() {
				continue
			}
			if f, err := w.LayerFiles(l, env, s); err != nil || f != "" {
				return expected, false
			}
		}
	}
	return expected, len(expected) > 0
}

// isLoop reports whether err is a symbolic link that leads back to itself.
func isLoop(err error) bool { return err != nil && errors.Is(err, syscall.ELOOP) }

func loopError(l Layer, file string) error {
	return diag.Errorf(l.Pos, "layer %q: %s is a symbolic link loop (it leads back to itself); point it at a file or remove it", l.Path, file)
}

// ReferencedFiles lists the files a release of this workspace needs, sorted:
// envplane.yaml, every file any layer stands for in any environment and
// service, the schema, the flag files and the environments' secrets files.
func (w *Workspace) ReferencedFiles() []string {
	set := map[string]bool{FileName: true}
	services := append([]string{""}, w.Services...)
	for _, l := range w.Config.Layers {
		for _, e := range w.Environments {
			for _, s := range services {
				if f, err := w.LayerFiles(l, e.Name, s); err == nil && f != "" {
					set[f] = true
				}
			}
		}
	}
	add := func(p string) {
		if st, err := fs.Stat(w.FS, p); err == nil && st.Mode().IsRegular() {
			set[p] = true
		}
	}
	if w.Config.Schema != "" {
		add(w.Config.Schema)
	}
	for _, f := range w.Flags {
		add(f)
	}
	for _, e := range w.Environments {
		add(path.Join(w.Secrets.Dir, e.Name+".enc.yaml"))
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
