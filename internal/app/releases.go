package app

import (
	"context"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/config"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/release"
	"github.com/envplane/envplane/internal/secrets"
	"github.com/envplane/envplane/internal/workspace"
)

const (
	maxLabels     = 64
	maxLabelValue = 256
)

var labelKey = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._/-]{0,62})$`) })

// checkLabels reports every bad label.
func checkLabels(labels map[string]string, fe *errs.FieldErrors) {
	if len(labels) > maxLabels {
		fe.Add("labels", "at most %d labels", maxLabels)
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !labelKey().MatchString(k) {
			fe.Add("labels."+k, "a label name is 1–63 letters, digits, '.', '_', '/' or '-', starting with a letter or digit")
		}
		if len(labels[k]) > maxLabelValue {
			fe.Add("labels."+k, "a label value is at most %d bytes", maxLabelValue)
		}
	}
}

// CreateRelease validates files as a workspace and stores them as a release
// unless one with the same digest exists (created is then false). Storing a
// release changes no environment: environments it names that the server
// does not know yet come into being (with the release's definition and no
// release), which only a token scoped to every environment may cause.
func (a *App) CreateRelease(ctx context.Context, p *auth.Principal, files map[string][]byte, labels map[string]string) (rel domain.Release, created bool, err error) {
	if err := p.Can(auth.CreateRelease, ""); err != nil {
		return domain.Release{}, false, err
	}
	var fe errs.FieldErrors
	if files == nil {
		fe.Add("files", "required: an object of path → file content, with envplane.yaml at least")
	}
	checkLabels(labels, &fe)
	digest := release.Digest(files)
	// The same content was valid when it was stored: answer it without
	// validating again (CI re-uploads unchanged workspaces all the time).
	if len(fe) == 0 {
		existing, err := a.st.GetReleaseByDigest(ctx, digest)
		if err == nil {
			return existing, false, nil
		}
		if !errs.Is(err, errs.NotFound) {
			return domain.Release{}, false, err
		}
	}
	// Validation is CPU work: it happens before the write transaction, and
	// no more uploads are validated at once than there are cores.
	var compiled *config.Compiled
	var opened *release.Secrets
	if files != nil {
		select {
		case a.validating <- struct{}{}:
		case <-ctx.Done():
			return domain.Release{}, false, errs.Wrap(errs.Unavailable, ctx.Err(), "the upload ended while waiting for other uploads' validation")
		}
		compiled, opened, err = release.ValidateWith(ctx, files, a.ids, a.log)
		<-a.validating
		if fields := errs.FieldsOf(err); fields != nil {
			fe = append(fe, fields...)
		} else if err != nil {
			return domain.Release{}, false, err
		}
	}
	if err := fe.Err(); err != nil {
		return domain.Release{}, false, err
	}
	var size int64
	for _, b := range files {
		size += int64(len(b))
	}
	err = a.write(ctx, func(ctx context.Context, t *txn) error {
		existing, err := t.GetReleaseByDigest(ctx, digest)
		if err == nil {
			rel, created = existing, false
			return nil
		}
		if !errs.Is(err, errs.NotFound) {
			return err
		}
		known, err := t.ListEnvironments(ctx)
		if err != nil {
			return err
		}
		newEnvs := newEnvironments(compiled.Workspace, known, t.at)
		if err := mayCreateEnvironments(p, newEnvs); err != nil {
			return err
		}
		rel = domain.Release{ID: release.ID(digest), Digest: digest, Files: files, Labels: labels, Size: size, CreatedAt: t.at, CreatedBy: p.Actor()}
		if err := t.InsertRelease(ctx, rel); err != nil {
			return err
		}
		names := make([]string, 0, len(newEnvs))
		for _, e := range newEnvs {
			if err := t.UpsertEnvironment(ctx, e); err != nil {
				return err
			}
			t.notify(domain.Event{Kind: domain.EventEnvironment, Environment: e.Name})
			names = append(names, e.Name)
		}
		if err := t.record(p.Actor(), domain.ActionReleaseCreate, rel.ID, map[string]any{"digest": digest, "files": len(files),
			"size": size, "labels": labels, "environments": compiled.Workspace.EnvironmentNames(), "createdEnvironments": names}); err != nil {
			return err
		}
		t.notify(domain.Event{Kind: domain.EventRelease, ID: rel.ID})
		created = true
		return nil
	})
	if err != nil {
		return domain.Release{}, false, err
	}
	if created {
		a.uploaded.Store(&compiledRelease{id: rel.ID, c: compiled, sec: opened})
	}
	return rel, created, nil
}

// newEnvironments are the environments of ws the server does not know,
// defined as ws defines them.
func newEnvironments(ws *workspace.Workspace, known []domain.Environment, at time.Time) []domain.Environment {
	have := make(map[string]bool, len(known))
	for _, e := range known {
		have[e.Name] = true
	}
	var out []domain.Environment
	for i, e := range ws.Environments {
		if !have[e.Name] {
			d := definition(ws, i)
			d.UpdatedAt = at
			out = append(out, d)
		}
	}
	return out
}

// definition is environment i as ws defines it.
func definition(ws *workspace.Workspace, i int) domain.Environment {
	e := ws.Environments[i]
	return domain.Environment{Name: e.Name, Position: i, Protection: e.Protection, Data: e.Data, Promoted: e.Promotion != nil,
		Gates: gatesOf(e.Promotion)}
}

// gatesOf is a workspace promotion block as stored with the environment.
func gatesOf(pr *workspace.Promotion) *domain.PromotionGates {
	if pr == nil {
		return nil
	}
	g := &domain.PromotionGates{From: pr.From, Auto: pr.Auto, Checklist: pr.Checklist, WaitTimer: pr.WaitTimer}
	if a := pr.Approvals; a != nil {
		g.Approvals = &domain.GateApprovals{Required: a.Required, Groups: a.Groups, AllowSelfApproval: a.AllowSelfApproval}
	}
	for _, c := range pr.Checks {
		g.Checks = append(g.Checks, domain.GateCheck{Name: c.Name, Type: c.Type, URL: c.URL, ExpectStatus: c.ExpectStatus, Timeout: c.Timeout})
	}
	for _, f := range pr.Freeze {
		g.Freeze = append(g.Freeze, domain.FreezeWindow{From: f.From, To: f.To, Cron: f.Cron, Duration: f.Duration, Timezone: f.Timezone, Reason: f.Reason})
	}
	for _, h := range pr.Webhooks {
		g.Webhooks = append(g.Webhooks, domain.PromotionHook{URL: h.URL, Secret: h.Secret, Events: h.Events})
	}
	return g
}

// mayCreateEnvironments lets only a token scoped to every environment bring
// new ones into being: a scoped token would otherwise define environments
// beyond its reach.
func mayCreateEnvironments(p *auth.Principal, envs []domain.Environment) error {
	if len(envs) == 0 || len(p.Environments) == 0 {
		return nil
	}
	names := make([]string, len(envs))
	for i, e := range envs {
		names[i] = e.Name
	}
	return errs.E(errs.Forbidden, "the release defines environments the server does not know (%s); only a token scoped to every environment may create environments", joinQuoted(names))
}

// ListReleases lists releases newest first, without files.
func (a *App) ListReleases(ctx context.Context, p *auth.Principal, limit int) ([]domain.Release, error) {
	if err := p.Can(auth.ReadReleases, ""); err != nil {
		return nil, err
	}
	return a.st.ListReleases(ctx, limit)
}

// GetRelease returns a release; its files only to a token whose scope
// covers every environment the release defines (the files hold every
// environment's config). withFiles says whether they are included.
func (a *App) GetRelease(ctx context.Context, p *auth.Principal, id string) (rel domain.Release, withFiles bool, err error) {
	if err := p.Can(auth.ReadReleases, ""); err != nil {
		return domain.Release{}, false, err
	}
	rel, err = a.st.GetRelease(ctx, id)
	if errs.Is(err, errs.NotFound) {
		return domain.Release{}, false, errs.E(errs.NotFound, "unknown release %q", id)
	}
	if err != nil {
		return domain.Release{}, false, err
	}
	if len(p.Environments) > 0 {
		ws, err := workspace.Load(release.FS(rel.Files))
		if err != nil || !coversAll(p, ws.EnvironmentNames()) {
			rel.Files = nil
		}
	}
	return rel, rel.Files != nil, nil
}

func coversAll(p *auth.Principal, envs []string) bool {
	for _, e := range envs {
		if !p.InScope(e) {
			return false
		}
	}
	return true
}

// Compiled returns release id ready for resolution: the one last uploaded
// through this App without loading it again, else loaded from the store.
// A release that no longer loads is a Conflict saying why.
func (a *App) Compiled(ctx context.Context, id string) (*config.Compiled, error) {
	l, err := a.LoadRelease(ctx, id)
	return l.Compiled, err
}

// LoadedRelease is a release ready for resolution on the server: its
// compiled workspace, and its workspace secrets files as the server's age
// identities open them (each at most once, on first use).
type LoadedRelease struct {
	Compiled *config.Compiled
	Secrets  *release.Secrets
}

// LoadRelease is Compiled with the release's secrets files: the last upload
// hands over the files its validation opened, so they are not opened again.
func (a *App) LoadRelease(ctx context.Context, id string) (LoadedRelease, error) {
	// Taken once: the upload's compiled workspace is not kept beyond the
	// snapshot that uses it.
	if u := a.uploaded.Load(); u != nil && u.id == id && a.uploaded.CompareAndSwap(u, nil) {
		return LoadedRelease{Compiled: u.c, Secrets: u.sec}, nil
	}
	r, err := a.st.GetRelease(ctx, id)
	if errs.Is(err, errs.NotFound) {
		return LoadedRelease{}, errs.E(errs.Conflict, "the current release %s is missing from the store", id)
	}
	if err != nil {
		return LoadedRelease{}, err
	}
	c, err := release.Load(r.Files)
	if err != nil {
		a.log.Error("stored release does not load", "release", id, "err", err)
		_, msg, fields := errs.Public(err)
		return LoadedRelease{}, &errs.Error{Kind: errs.Conflict, Message: "the current release " + id + " does not load: " + msg, Fields: fields}
	}
	return LoadedRelease{Compiled: c, Secrets: release.OpenSecrets(id, c.Workspace, a.ids, a.log)}, nil
}

// AgeRecipients are the recipients of the server's age identities: what a
// workspace lists under secrets.recipients for the server to open its files.
func (a *App) AgeRecipients() []string { return secrets.Recipients(a.ids) }

// ReleaseSecretsError is a release's secrets file for env that does not
// parse or fails authentication, as the Conflict a config, explain or check
// answers with (the file and where, never a value); nil when it opens or
// is skipped.
func ReleaseSecretsError(id, env string, es *release.EnvSecrets) error {
	if es == nil || es.Err == nil {
		return nil
	}
	return &errs.Error{Kind: errs.Conflict, Fields: es.Fields(),
		Message: "the secrets file " + es.File + " of release " + id + " does not open for " + env + ": it does not parse or fails authentication"}
}

// SkippedSecretsHint says why the names of a secrets file the server's
// identity does not open resolve to nothing, and what to do about it.
func SkippedSecretsHint(es *release.EnvSecrets) string {
	if es.NoIdentity {
		return es.File + " is not opened on the server: the server has no age identity " +
			"(start it with --age-identity-file, and list the output of `envplane server age-recipient` in the workspace's secrets.recipients)"
	}
	return es.File + " is not opened on the server: its recipients do not include the server's age identity " +
		"(list the output of `envplane server age-recipient` in the workspace's secrets.recipients and rewrite the file, e.g. `envplane secrets rotate`)"
}

// joinQuoted is names quoted and comma-separated, for messages.
func joinQuoted(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = `"` + n + `"`
	}
	return strings.Join(q, ", ")
}
