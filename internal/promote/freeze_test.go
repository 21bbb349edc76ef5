package promote_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/promote"
)

func TestCron(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		expr string
		t    string
		want bool
	}{
		{"* * * * *", "2025-03-14T12:34:00Z", true},
		{"30 12 * * *", "2025-03-14T12:30:00Z", true},
		{"30 12 * * *", "2025-03-14T12:31:00Z", false},
		{"*/15 9-17 * * 1-5", "2025-03-14T09:45:00Z", true},  // a Friday
		{"*/15 9-17 * * 1-5", "2025-03-15T09:45:00Z", false}, // Saturday
		{"0 0 1,15 * *", "2025-03-15T00:00:00Z", true},
		{"0 0 * 12 *", "2025-03-15T00:00:00Z", false},
		{"0 0 13 * 5", "2025-03-14T00:00:00Z", true}, // dom or dow
		{"0 0 * * 7", "2025-03-16T00:00:00Z", true},  // 7 is Sunday
	}
	for _, tt := range tests {
		c, err := promote.ParseCron(tt.expr)
		if err != nil {
			t.Fatalf("%s: %v", tt.expr, err)
		}
		if got := c.Match(at(tt.t)); got != tt.want {
			t.Errorf("%q at %s: %v, want %v", tt.expr, tt.t, got, tt.want)
		}
	}
	for _, bad := range []string{"", "* * * *", "60 * * * *", "* * 0 * *", "*/0 * * * *", "a * * * *", "5-1 * * * *"} {
		if _, err := promote.ParseCron(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestFrozenAt(t *testing.T) {
	fri := time.Date(2025, 3, 14, 19, 0, 0, 0, time.UTC)
	weekend := domain.FreezeWindow{Cron: "0 18 * * 5", Duration: 62 * time.Hour, Reason: "weekend"}
	fixed := domain.FreezeWindow{From: fri.Add(-2 * time.Hour), To: fri.Add(time.Hour), Reason: "launch"}
	paris := domain.FreezeWindow{Cron: "0 18 * * 5", Duration: time.Hour, Timezone: "Europe/Paris", Reason: "apéro"}
	tests := []struct {
		name string
		ws   []domain.FreezeWindow
		at   time.Time
		want *promote.Frozen
	}{
		{"none", nil, fri, nil},
		{"cron active", []domain.FreezeWindow{weekend}, fri, &promote.Frozen{Until: time.Date(2025, 3, 17, 8, 0, 0, 0, time.UTC), Reason: "weekend"}},
		{"cron before", []domain.FreezeWindow{weekend}, fri.Add(-2 * time.Hour), nil},
		{"fixed", []domain.FreezeWindow{fixed}, fri, &promote.Frozen{Until: fri.Add(time.Hour), Reason: "launch"}},
		{"fixed end is open", []domain.FreezeWindow{fixed}, fri.Add(time.Hour), nil},
		{"chained", []domain.FreezeWindow{fixed, {From: fri.Add(time.Hour), To: fri.Add(3 * time.Hour)}},
			fri, &promote.Frozen{Until: fri.Add(3 * time.Hour), Reason: "launch"}},
		{"timezone", []domain.FreezeWindow{paris}, time.Date(2025, 3, 14, 17, 30, 0, 0, time.UTC), &promote.Frozen{Until: time.Date(2025, 3, 14, 18, 0, 0, 0, time.UTC), Reason: "apéro"}},
	}
	for _, tt := range tests {
		got, err := promote.FrozenAt(tt.ws, tt.at)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got)\n%s", tt.name, diff)
		}
	}
}
