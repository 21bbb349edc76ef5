package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envplane/envplane/internal/store/postgres/pgtest"
)

// Crash-test parameters: rounds of SIGKILL, concurrent writers per round,
// and the bounds of the random time a round's writers get before the kill.
const (
	crashRounds   = 20
	crashWriters  = 4
	crashMinDelay = 20 * time.Millisecond
	crashMaxDelay = 300 * time.Millisecond
)

// crashSeedEnv reruns the crash test with the seed a failed run logged.
const crashSeedEnv = "ENVPLANE_CRASH_SEED"

// TestCrashSafety runs the envplane binary as a subprocess, writes to it
// from concurrent clients and kills it with SIGKILL at random moments. Once
// every round is done, each write a client saw acknowledged must still be
// there, the audit log must record it, and the audit chain must verify.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: builds the binary and kills it 20 times per backend")
	}
	bin := buildEnvplane(t)
	t.Run("sqlite", func(t *testing.T) {
		crashLoop(t, bin, filepath.Join(t.TempDir(), "state", "envplane.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		crashLoop(t, bin, pgtest.URL(t))
	})
}

// buildEnvplane builds cmd/envplane into a temporary directory.
func buildEnvplane(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("crash test: the go command is not on PATH")
	}
	bin := filepath.Join(t.TempDir(), "envplane")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, goBin, "build", "-o", bin, "github.com/envplane/envplane/cmd/envplane").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built %s in %v", bin, time.Since(start).Round(time.Millisecond))
	return bin
}

// acks are the writes clients saw acknowledged with a 2xx answer.
type acks struct {
	mu       sync.Mutex
	releases map[string]string // release ID → the value its config.yaml carries
	tokens   map[string]string // token ID → its name
	// unexpected are complete answers other than 2xx: none should come.
	unexpected []string
}

func (a *acks) odd(what string, status int, body []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.unexpected = append(a.unexpected, fmt.Sprintf("%s: %d %s", what, status, body))
}

func (a *acks) release(id, value string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.releases[id] = value
}

func (a *acks) token(id, name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tokens[id] = name
}

func (a *acks) counts() (releases, tokens int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.releases), len(a.tokens)
}

func crashLoop(t *testing.T, bin, database string) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(crashSeedEnv); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: want an unsigned integer", crashSeedEnv, v)
		}
		seed = n
	}
	t.Logf("seed %d (rerun with %s=%d)", seed, crashSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, seed>>32|seed<<32))
	dir := t.TempDir() // the servers' working directory
	began := time.Now()

	got := &acks{releases: map[string]string{}, tokens: map[string]string{}}
	for round := range crashRounds {
		p := startServe(t, bin, dir, database)
		c := newCrashClient(p.url)
		// Every restart finds an intact chain, not only the last one.
		if res := c.verify(t); !res.OK {
			t.Fatalf("round %d: audit verify after restart: %+v\nstderr:\n%s", round, res, p.stderr)
		}
		relBefore, tokBefore := got.counts()

		var stop atomic.Bool
		var wg sync.WaitGroup
		for w := range crashWriters {
			wg.Go(func() { c.write(round, w, &stop, got) })
		}
		// The delay counts from the round's first acknowledged write of each
		// kind, so a loaded machine's slow start does not leave rounds that
		// prove nothing.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if r, k := got.counts(); r > relBefore && k > tokBefore {
				break
			}
		}
		delay := crashMinDelay + time.Duration(rng.Int64N(int64(crashMaxDelay-crashMinDelay)+1))
		time.Sleep(delay)
		p.kill(t)
		stop.Store(true)
		waitGroup(t, &wg, 15*time.Second, "writers")
		c.http.CloseIdleConnections()

		if len(got.unexpected) > 0 {
			t.Fatalf("round %d: answers other than 2xx:\n%s\nstderr:\n%s", round, strings.Join(got.unexpected, "\n"), p.stderr)
		}
		relAfter, tokAfter := got.counts()
		t.Logf("round %2d: SIGKILL after %3d ms; acknowledged %d releases, %d tokens",
			round, delay.Milliseconds(), relAfter-relBefore, tokAfter-tokBefore)
	}

	// One more start: everything acknowledged must have survived.
	p := startServe(t, bin, dir, database)
	c := newCrashClient(p.url)
	defer c.http.CloseIdleConnections()
	nRel, nTok := got.counts()
	if nRel == 0 || nTok == 0 {
		t.Fatalf("only %d releases and %d tokens were acknowledged in %d rounds: the test proved nothing\nstderr:\n%s",
			nRel, nTok, crashRounds, p.stderr)
	}

	// Lost writes are listed with the value or name that says their round.
	var lost []string
	for id, value := range got.releases {
		status, body := c.do(t, "GET", "/api/v1/releases/"+id, nil)
		if status != http.StatusOK {
			lost = append(lost, fmt.Sprintf("release %s (%s): GET answered %d: %s", id, value, status, bytes.TrimSpace(body)))
			continue
		}
		var rel struct {
			Files map[string]string `json:"files"`
		}
		if err := json.Unmarshal(body, &rel); err != nil {
			t.Fatalf("release %s: %v: %s", id, err, body)
		}
		if want := crashConfig(value); rel.Files["config.yaml"] != want {
			t.Errorf("release %s: config.yaml = %q, want %q", id, rel.Files["config.yaml"], want)
		}
	}

	status, body := c.do(t, "GET", "/api/v1/tokens", nil)
	if status != http.StatusOK {
		t.Fatalf("GET /api/v1/tokens: %d: %s", status, body)
	}
	var tl struct {
		Tokens []struct {
			ID string `json:"id"`
		} `json:"tokens"`
	}
	if err := json.Unmarshal(body, &tl); err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, tok := range tl.Tokens {
		listed[tok.ID] = true
	}
	for id, name := range got.tokens {
		if !listed[id] {
			lost = append(lost, fmt.Sprintf("token %s (%s) is not listed", id, name))
		}
	}

	// The audit log records every acknowledged write.
	audited := c.audited(t)
	for id, value := range got.releases {
		if !audited["release.create "+id] {
			lost = append(lost, fmt.Sprintf("release %s (%s) has no release.create audit entry", id, value))
		}
	}
	for id, name := range got.tokens {
		if !audited["token.create "+id] {
			lost = append(lost, fmt.Sprintf("token %s (%s) has no token.create audit entry", id, name))
		}
	}
	if len(lost) > 0 {
		slices.Sort(lost)
		t.Errorf("%d problems with acknowledged writes (%d releases, %d tokens acknowledged), the first ones:\n%s",
			len(lost), nRel, nTok, strings.Join(lost[:min(len(lost), 20)], "\n"))
	}

	res := c.verify(t)
	// The bootstrap token's entry comes on top of the acknowledged writes.
	if want := int64(1 + nRel + nTok); !res.OK || res.Entries < want {
		t.Errorf("audit verify: %+v; want ok with at least %d entries", res, want)
	}
	t.Logf("%d rounds: %d releases and %d tokens acknowledged, all present; audit chain of %d entries verifies; %v",
		crashRounds, nRel, nTok, res.Entries, time.Since(began).Round(time.Millisecond))
}

// serveProc is one `envplane serve` subprocess.
type serveProc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	url    string
	done   chan struct{} // closed once the process has been waited for
}

var servingOn = regexp.MustCompile(`envplane: serving on (http://127\.0\.0\.1:\d+) `)

// startServe starts `envplane serve` in dir on a free port of 127.0.0.1 and
// waits until it is ready. It is killed at the end of the test at the latest.
func startServe(t *testing.T, bin, dir, database string) *serveProc {
	t.Helper()
	// The port is the kernel's choice, read back from the startup line: no
	// window in which another process could take it.
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--database", database, "--rate-limit", "0")
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ENVPLANE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "ENVPLANE_BOOTSTRAP_TOKEN="+adminToken, "ENVPLANE_LOG_LEVEL=warn",
		"ENVPLANE_MASTER_KEY="+base64.StdEncoding.EncodeToString(testMasterKey)) // required with PostgreSQL
	p := &serveProc{cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill(t) })

	deadline := time.Now().Add(20 * time.Second)
	for p.url == "" {
		if m := servingOn.FindStringSubmatch(p.stderr.String()); m != nil {
			p.url = m[1]
			break
		}
		p.pause(t, deadline, "the serving line")
	}
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	for {
		resp, err := client.Get(p.url + "/health/ready")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		p.pause(t, deadline, "/health/ready")
	}
}

// pause waits a little, failing when the process exited or deadline passed.
func (p *serveProc) pause(t *testing.T, deadline time.Time, what string) {
	t.Helper()
	if time.Now().After(deadline) {
		t.Fatalf("envplane serve: no %s in time\nstderr:\n%s", what, p.stderr)
	}
	select {
	case <-p.done:
		t.Fatalf("envplane serve exited (%v) before %s\nstderr:\n%s", p.cmd.ProcessState, what, p.stderr)
	case <-time.After(10 * time.Millisecond):
	}
}

// kill sends SIGKILL (unless the process is gone) and waits for the exit.
func (p *serveProc) kill(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill() // SIGKILL
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("envplane serve (pid %d) did not exit after SIGKILL", p.cmd.Process.Pid)
	}
}

// waitGroup waits for wg, failing the test after timeout.
func waitGroup(t *testing.T, wg *sync.WaitGroup, timeout time.Duration, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		t.Fatalf("%s did not stop within %v", what, timeout)
	}
}

// crashClient talks to one server process as the admin.
type crashClient struct {
	base string
	http *http.Client
}

func newCrashClient(base string) *crashClient {
	return &crashClient{base: base, http: &http.Client{Timeout: 10 * time.Second}}
}

// send makes one request; err is any failure to get the whole answer.
func (c *crashClient) send(method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// do is send for a server that must stay up.
func (c *crashClient) do(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	status, data, err := c.send(method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return status, data
}

type verifyResult struct {
	OK      bool   `json:"ok"`
	Entries int64  `json:"entries"`
	BadSeq  int64  `json:"badSeq"`
	Problem string `json:"problem"`
}

func (c *crashClient) verify(t *testing.T) verifyResult {
	t.Helper()
	status, body := c.do(t, "GET", "/api/v1/audit/verify", nil)
	var res verifyResult
	if status != http.StatusOK || json.Unmarshal(body, &res) != nil {
		t.Fatalf("GET /api/v1/audit/verify: %d: %s", status, body)
	}
	return res
}

// audited returns "action target" of every audit entry.
func (c *crashClient) audited(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	var after int64
	for range 10_000 { // a bound far above any log this test writes
		status, body := c.do(t, "GET", fmt.Sprintf("/api/v1/audit?after=%d&limit=1000", after), nil)
		var page struct {
			Entries []struct {
				Seq    int64  `json:"seq"`
				Action string `json:"action"`
				Target string `json:"target"`
			} `json:"entries"`
		}
		if status != http.StatusOK || json.Unmarshal(body, &page) != nil {
			t.Fatalf("GET /api/v1/audit: %d: %s", status, body)
		}
		for _, e := range page.Entries {
			out[e.Action+" "+e.Target] = true
			after = e.Seq
		}
		if len(page.Entries) < 1000 {
			return out
		}
	}
	t.Fatal("the audit log did not end")
	return nil
}

// crashConfig is the config.yaml of the release carrying value.
func crashConfig(value string) string { return "value: " + value + "\n" }

// write uploads releases and creates tokens in turn until stop is set,
// recording each write answered with a 2xx. Failures are expected: the
// server is killed under it.
func (c *crashClient) write(round, writer int, stop *atomic.Bool, got *acks) {
	for n := 0; !stop.Load() && n < 100_000; n++ {
		if n%2 == 0 {
			value := fmt.Sprintf("r%d-w%d-n%d", round, writer, n)
			files := map[string]string{
				"envplane.yaml": "environments:\n  - name: dev\nconfig:\n  layers: [config.yaml]\n",
				"config.yaml":   crashConfig(value),
			}
			status, body, err := c.send("POST", "/api/v1/releases", map[string]any{"files": files})
			var rel struct {
				ID string `json:"id"`
			}
			switch {
			case err != nil: // killed mid-request: not acknowledged
			case status/100 == 2 && json.Unmarshal(body, &rel) == nil && rel.ID != "":
				got.release(rel.ID, value)
			default:
				got.odd("POST /api/v1/releases", status, body)
			}
		} else {
			name := fmt.Sprintf("crash r%d w%d n%d", round, writer, n)
			status, body, err := c.send("POST", "/api/v1/tokens", map[string]any{"name": name, "role": "viewer", "environments": []string{}})
			var tok struct {
				ID string `json:"id"`
			}
			switch {
			case err != nil:
			case status/100 == 2 && json.Unmarshal(body, &tok) == nil && tok.ID != "":
				got.token(tok.ID, name)
			default:
				got.odd("POST /api/v1/tokens", status, body)
			}
		}
	}
}
