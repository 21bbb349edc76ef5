package workspace_test

import (
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/workspace"
)

func TestPromotionBlock(t *testing.T) {
	ws, err := workspace.Parse(fstest.MapFS{}, []byte(`environments:
  - staging
  - name: production
    promotion:
      from: staging
      checks: [policy, smoke, {name: health, type: http, url: "http://127.0.0.1/ready", expectStatus: 204, timeout: 3s}]
      freeze:
        - {from: 2025-12-20T00:00:00Z, to: 2026-01-02T00:00:00Z, reason: holidays}
        - {cron: "0 18 * * 5", duration: 62h, timezone: Europe/Paris}
      webhooks:
        - {url: "https://deploy.example.com/hook", secret: DEPLOY_HOOK_SECRET, events: [promotion.applied]}
`))
	if err != nil {
		t.Fatal(err)
	}
	pr := ws.Environments[1].Promotion
	pr.Pos = diag.Pos{}
	want := &workspace.Promotion{
		From: "staging",
		Checks: []workspace.Check{{Name: "policy", Type: "policy"}, {Name: "smoke", Type: "external"},
			{Name: "health", Type: "http", URL: "http://127.0.0.1/ready", ExpectStatus: 204, Timeout: 3 * time.Second}},
		Freeze: []workspace.Freeze{
			{From: time.Date(2025, 12, 20, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Reason: "holidays"},
			{Cron: "0 18 * * 5", Duration: 62 * time.Hour, Timezone: "Europe/Paris"},
		},
		Webhooks: []workspace.Webhook{{URL: "https://deploy.example.com/hook", Secret: "DEPLOY_HOOK_SECRET", Events: []string{"promotion.applied"}}},
	}
	if diff := cmp.Diff(want, pr); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestPromotionBlockErrors(t *testing.T) {
	_, err := workspace.Parse(fstest.MapFS{}, []byte(`environments:
  - staging
  - name: production
    promotion:
      from: staging
      checks: [{name: h, type: http, url: "http://x", expectStatus: 700}]
      freeze:
        - {from: 2025-12-20, to: 2026-01-02T00:00:00Z}
        - {cron: "61 * * * *", duration: 1h}
        - {cron: "0 * * * *"}
        - {reason: nothing}
        - {from: 2026-01-02T00:00:00Z, to: 2025-01-02T00:00:00Z}
      webhooks:
        - {url: "ftp://x", events: [promotion.exploded]}
`))
	want := []string{
		"envplane.yaml:6:69: check expectStatus: 700 is not an HTTP status",
		`envplane.yaml:8:18: freeze from: expected an RFC 3339 time like 2025-12-20T00:00:00Z, found "2025-12-20"`,
		`envplane.yaml:9:11: promotion freeze: cron "61 * * * *": minute: "61" is outside 0-59`,
		"envplane.yaml:10:11: promotion freeze: a cron window needs a `duration:` from 1m to 744h",
		"envplane.yaml:11:11: promotion freeze: needs `from:` and `to:` (RFC 3339), or `cron:` and `duration:`",
		"envplane.yaml:12:11: promotion freeze: `to:` must be after `from:`",
		"envplane.yaml:14:11: promotion webhook needs an http(s) `url:`",
		"envplane.yaml:14:11: promotion webhook needs `secret:`, the name of a server-side secret of the environment that signs its requests",
		`envplane.yaml:14:11: promotion webhook event "promotion.exploded" is not one of promotion.created, promotion.approved, promotion.applied, promotion.failed, promotion.rejected`,
	}
	var got []string
	for _, d := range diag.Of(err) {
		got = append(got, d.Error())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}
