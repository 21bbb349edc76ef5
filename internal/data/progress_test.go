package data

import (
	"sync"
	"testing"
	"time"
)

func TestProgressReportsRateAndETA(t *testing.T) {
	var mu sync.Mutex
	var got []Progress
	p := newProgress(func(pr Progress) {
		mu.Lock()
		got = append(got, pr)
		mu.Unlock()
	}, 5*time.Millisecond)
	rows := p.start("customers", 1000)
	rows.Store(250)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n > 0 {
			break
		}
	}
	p.finish("customers", 1000)
	p.stop()
	mu.Lock()
	defer mu.Unlock()
	if len(got) < 2 {
		t.Fatalf("reports: %+v", got)
	}
	run, done := got[0], got[len(got)-1]
	if run.Table != "customers" || run.Rows != 250 || run.Estimated != 1000 || run.RowsPerSec <= 0 || run.ETASeconds <= 0 || run.Done {
		t.Errorf("while running: %+v", run)
	}
	// 750 rows left at the reported rate
	if want := 750 / run.RowsPerSec; run.ETASeconds < want || run.ETASeconds > want+1 {
		t.Errorf("ETA %v s at %v rows/s, want about %v", run.ETASeconds, run.RowsPerSec, want)
	}
	if !done.Done || done.Rows != 1000 || done.ETASeconds != 0 {
		t.Errorf("done: %+v", done)
	}
}
